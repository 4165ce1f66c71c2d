from examples.seed_question.run import main

main()
