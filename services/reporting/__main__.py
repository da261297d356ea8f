from services.common.cli import service_cli
from services.reporting.app import INPUT_TOPICS, create

service_cli("reporting", create, INPUT_TOPICS)()
