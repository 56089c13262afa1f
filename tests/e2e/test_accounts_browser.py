from __future__ import annotations

import subprocess

import pytest
from django.contrib.auth import get_user_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_newcomer_signs_up_sees_the_engine_changes_password_and_logs_back_in(live_server, page, screenshot):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "newcomer")
    page.fill("#id_email", "newcomer@example.com")
    page.fill("#id_password1", "weak")
    page.fill("#id_password2", "weak")
    page.click("main form.form button[type=submit]")
    assert page.locator(".errorlist").first.is_visible()
    screenshot("signup-error")
    assert not get_user_model().objects.filter(username="newcomer").exists()

    page.fill("#id_password1", "a long enough passphrase")
    page.fill("#id_password2", "a long enough passphrase")
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    driver = subprocess.run(["docker", "info", "--format", "{{.Driver}}"], capture_output=True, text=True).stdout
    assert driver.strip() in page.locator("#engine").inner_text()
    screenshot("dashboard")

    page.click("text=newcomer")
    page.fill("#id_old_password", "a long enough passphrase")
    page.fill("#id_new_password1", "a different passphrase")
    page.fill("#id_new_password2", "a different passphrase")
    page.click("main form.form button[type=submit]")
    assert page.locator("h1").inner_text() == "Password changed"

    page.click("header >> text=Log out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password", "a long enough passphrase")
    page.click("main form.form button[type=submit]")
    assert page.locator(".errorlist").first.is_visible()

    page.fill("#id_password", "a different passphrase")
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    screenshot("logged-back-in")
