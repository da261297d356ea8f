"""taskforce: event-driven monitoring of Danish municipalities' Task Force courses."""
