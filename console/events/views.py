from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.errors import DomainError, run_form
from console.events import services
from console.events.filters import EventFilter
from console.events.forms import WebhookForm
from console.events.models import Webhook
from console.listing import paginate


def _get_webhook_for_user(request: HttpRequest, pk: int) -> Webhook:
    return get_object_or_404(services.webhooks_for(request.user), pk=pk)


@login_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    listing = paginate(request, EventFilter(request.GET, queryset=services.events_for(request.user)), noun="event")
    context = {"listing": listing, "form": listing.form, "page": listing.page}
    return render(request, "events/event_list.html", context, status=listing.status)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    """The webhooks, and the form that adds one."""
    form = WebhookForm(request.POST or None)
    webhook = run_form(request, form, lambda data: services.create_webhook(request.user, **data))
    if webhook is not None:
        messages.success(request, f"Webhook {webhook.url} added.")
        return redirect("events:webhook-detail", pk=webhook.pk)
    context = {"webhooks": services.webhooks_for(request.user), "form": form}
    return render(request, "events/webhook_list.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _get_webhook_for_user(request, pk)
    deliveries = services.deliveries_for(webhook).order_by("-pk")[:50]
    return render(request, "events/webhook_detail.html", {"webhook": webhook, "deliveries": deliveries})


@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _get_webhook_for_user(request, pk)
    services.delete_webhook(webhook)
    messages.success(request, f"Webhook {webhook.url} deleted.")
    return redirect("events:webhook-list")


@login_required
@require_POST
def webhook_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _get_webhook_for_user(request, pk)
    services.update_webhook(webhook, request.user, {"active": not webhook.active})
    messages.success(request, f"Webhook {'turned on' if webhook.active else 'turned off'}.")
    return redirect("events:webhook-detail", pk=webhook.pk)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    webhook = _get_webhook_for_user(request, pk)
    delivery = get_object_or_404(services.deliveries_for(webhook), pk=delivery_id)
    try:
        services.redeliver(delivery)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Delivery queued again.")
    return redirect("events:webhook-detail", pk=webhook.pk)
