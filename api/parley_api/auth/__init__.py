"""Dashboard accounts: HTTP Basic against api_users, a verification cache, failed-login throttling,
and self-registration with the admin token (POST /api/v1/auth/register)."""
