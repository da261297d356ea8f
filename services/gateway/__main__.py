from services.gateway.cli import main

main()
