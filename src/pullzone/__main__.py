from pullzone.cli.main import app

app()
