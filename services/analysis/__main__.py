from services.analysis.app import create
from services.common.cli import service_cli

service_cli("analysis", create)()
