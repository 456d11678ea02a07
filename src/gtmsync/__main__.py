from gtmsync.cli import main

main()
