from regionaudit.cli import main

main()
