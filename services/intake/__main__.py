from services.common.cli import service_cli
from services.intake.app import INPUT_TOPICS, create

service_cli("intake", create, INPUT_TOPICS)()
