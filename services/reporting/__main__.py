from services.common.cli import service_cli
from services.reporting.app import compose

service_cli("reporting", compose)()
