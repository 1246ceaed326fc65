from regionaudit.bench.run import main

main()
