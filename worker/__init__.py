"""Worker: the Celery app and tasks that execute remediation playbooks."""
