from services.common.cli import service_cli
from services.intake.app import create

service_cli("intake", create)()
