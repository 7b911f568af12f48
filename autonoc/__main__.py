from autonoc.cli import main

main()
