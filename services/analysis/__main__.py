from services.analysis.app import INPUT_TOPICS, create
from services.common.cli import service_cli

service_cli("analysis", create, INPUT_TOPICS)()
