from services.common.cli import service_cli
from services.followup.app import INPUT_TOPICS, create

service_cli("followup", create, INPUT_TOPICS)()
