from lstm_compare.frontends.entry import main

main()
