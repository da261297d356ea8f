from services.analysis.app import compose
from services.common.cli import service_cli

service_cli("analysis", compose)()
