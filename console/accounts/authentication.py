from __future__ import annotations

from rest_framework import authentication, exceptions

from console.accounts.services import user_for_token


class AccessTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <personal access token>`."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Token <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token holds characters a token never has.") from None
        user = user_for_token(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("The token is not valid, or it was revoked.")
        return user, raw

    def authenticate_header(self, request) -> str:
        return self.keyword
