from services.common.cli import service_cli
from services.reporting.app import create

service_cli("reporting", create)()
