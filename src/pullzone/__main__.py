from pullzone.cli.main import app

# Guarded: worker processes are spawned and re-import the main module as __mp_main__.
if __name__ == "__main__":
    app()
