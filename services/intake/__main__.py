from services.common.cli import service_cli
from services.intake.app import compose

service_cli("intake", compose)()
