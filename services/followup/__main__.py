from services.common.cli import service_cli
from services.followup.app import compose

service_cli("followup", compose)()
