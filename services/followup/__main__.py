from services.common.cli import service_cli
from services.followup.app import create

service_cli("followup", create)()
