"""The closed loop end to end reuses the integration layer's server fixtures."""

from tests.integration.conftest import external_redis_url, postgres_admin_url

__all__ = ["external_redis_url", "postgres_admin_url"]
