from respread.cli import main

main()
