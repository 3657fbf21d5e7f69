"""The login-lockout backend as the test settings install it.

Django's test `Client.login()` calls `authenticate()` without a request, which axes refuses
(it needs the request to know the source). Only that test-client path skips axes here; every
request the tests send to a sign-in form goes through axes as in production
(tests/governance/test_login_lockout.py).
"""

from axes.backends import AxesStandaloneBackend


class AxesBackendWithTestClientLogin(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # Client.login(): no request, nothing to count or refuse
            return None
        return super().authenticate(request, username, password, **kwargs)
