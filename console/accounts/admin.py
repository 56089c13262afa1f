from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from console.accounts.forms import AdminLoginForm, AdminUserAddForm, AdminUserEditForm
from console.accounts.models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "last_used"]
    readonly_fields = ["prefix", "key_hash", "created", "last_used"]


# The admin site's own login page checks passwords through the login throttle, like every other face
# (console/urls.py routes /admin/login/ to views.admin_login, which adds the 429).
admin.site.login_form = AdminLoginForm


class ConsoleUserAdmin(UserAdmin):
    """Django's user admin, with the username rules of sign-up (accounts/usernames.py)."""

    add_form = AdminUserAddForm
    form = AdminUserEditForm


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), ConsoleUserAdmin)
