from lstm_compare.frontends.cli import main

main()
