# Read by `flask` (through python-dotenv), so `.venv/bin/flask …` works as typed from the checkout.
FLASK_APP=stagebackup
