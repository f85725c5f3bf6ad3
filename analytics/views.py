"""The analytics dashboard page, its CSV downloads and the on-demand recompute."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from loyalty.selectors import dashboard_figures

from . import selectors, services
from .forms import DashboardFilterForm
from .models import RfmSegment, RunStatus


def _filters(request) -> tuple[DashboardFilterForm, selectors.Period, int | None, str | None]:
    if not selectors.can_view_dashboard(request.user):
        raise Http404
    form = DashboardFilterForm(request.GET or None, user=request.user)
    if form.is_bound and form.is_valid():
        store = form.cleaned_data.get("store")
        currency = form.cleaned_data.get("currency") or None
        return form, form.cleaned_data["period"], store.pk if store else None, currency
    return form, selectors.default_period(), None, None


CHARTS = {
    "kpis": lambda user, period, store_id, currency: selectors.dashboard_kpis(
        user, period=period, store_id=store_id, currency=currency
    ),
    "classes": lambda user, period, store_id, currency: selectors.value_class_distribution(user),
    "pareto": lambda user, period, store_id, currency: selectors.pareto_curve(user),
    "rfm": lambda user, period, store_id, currency: selectors.rfm_grid(user),
    "cohorts": lambda user, period, store_id, currency: selectors.cohort_retention(
        user, store_id=store_id, currency=currency
    ),
    "sales": lambda user, period, store_id, currency: selectors.monthly_sales(
        user, store_id=store_id, currency=currency
    ),
    "stores": lambda user, period, store_id, currency: selectors.store_comparison(
        user, period=period, store_id=store_id, currency=currency
    ),
}

# The steps a recompute reports (analytics.metrics), in the reader's language.
STEP_LABELS = {
    "receipts": _("reading receipts"),
    "returns": _("reading returns"),
    "purchase days": _("counting purchase days"),
    "favourite categories": _("favourite categories"),
    "model fit": _("fitting the lifetime value models"),
    "backtest": _("backtesting the model"),
    "ranking": _("ranking customers"),
    "predictions": _("predictions"),
    "writing": _("saving the results"),
}


def run_label(run) -> str:
    """A recompute's state in the reader's language, with its progress while it works."""
    if run is None:
        return ""
    label = str(run.get_status_display())
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        step = STEP_LABELS.get(run.step)
        label = f"{label}: {run.progress}%" + (f", {step}" if step else "")
    return label


def _charts(user, period, store_id, currency, names=tuple(CHARTS)) -> dict:
    charts = {name: CHARTS[name](user, period, store_id, currency) for name in names}
    if "sales" in charts:
        charts["forecast"] = selectors.sales_forecast(charts["sales"])
    return charts


def _kind(name: str) -> str:
    if name in selectors.RATE_KPIS:
        return "rate"
    return "money" if name in selectors.MONEY_KPIS else "count"


def _chart_labels() -> dict:
    return {
        "share_customers": str(_("Share of customers, %")),
        "share_revenue": str(_("Share of revenue, %")),
        "cohort": str(_("Cohort")),
        "customers": str(_("Customers")),
        "revenue": str(_("Revenue")),
        "partial": str(_("This month so far (incomplete)")),
        "forecast": str(_("Forecast")),
        "forecast_low": str(_("Forecast, lower bound (80%)")),
        "forecast_high": str(_("Forecast, upper bound (80%)")),
        "segments": {value: str(label) for value, label in RfmSegment.choices},
    }


@login_required
@require_GET
def dashboard(request):
    form, period, store_id, currency = _filters(request)
    charts = _charts(request.user, period, store_id, currency)
    fit = selectors.latest_fit()
    run = selectors.latest_run()
    return render(
        request,
        "analytics/dashboard.html",
        {
            "form": form,
            "period": period,
            "previous": period.previous(),
            "charts": charts,
            "kpi_rows": [
                (name, selectors.KPI_LABELS[name], kpi, _kind(name))
                for name, kpi in charts["kpis"].items()
            ],
            "currency": currency or selectors.chain_currencies()[0],
            "several_currencies": len(selectors.chain_currencies()) > 1,
            "query": request.GET.urlencode(),
            "fit": fit,
            "backtest_groups": (fit.backtest or {}).get("groups", []) if fit else [],
            "chart_labels": _chart_labels(),
            "run": run,
            "run_label": run_label(run),
            "can_recompute": selectors.can_recompute(request.user),
        },
    )


# The CSV's column titles in the reader's language (a column's key is the selectors' name).
CSV_COLUMNS = {
    "kpi": _("Indicator"),
    "current": _("Current period"),
    "previous": _("Previous period"),
    "change": _("Change"),
    "change_pp": _("Change, p.p."),
    "cohort": _("Cohort"),
    "size": _("Customers in the cohort"),
    "month": _("Month"),
    "revenue": _("Revenue"),
    "partial": _("Month not over"),
    "forecast": _("Forecast"),
    "low": _("Forecast, low"),
    "high": _("Forecast, high"),
    "value_class": _("Value class"),
    "label": _("Class name"),
    "customers": _("Customers"),
    "customer_share": _("Share of customers"),
    "revenue_share": _("Share of revenue"),
    "r": _("Recency score"),
    "f": _("Frequency score"),
    "segment": _("Segment"),
    "store_id": _("Store number"),
    "store": _("Store"),
    "receipts": _("Receipts"),
    "average_receipt": _("Average receipt"),
}


def _csv_title(key: str) -> str:
    if key.startswith("month_"):
        return _("Month %(n)s") % {"n": key[6:]}
    return str(CSV_COLUMNS.get(key, key))


def _csv_rows(name: str, charts: dict) -> tuple[list[str], list[list]]:
    """The chart's columns and rows: titles and codes (indicators, segments) as the reader
    reads them, so the file opens as a report, not as a dump."""
    if name == "kpis":
        rows = [
            [
                str(selectors.KPI_LABELS.get(k, k)),
                v["current"],
                v["previous"],
                v["change"],
                v["change_pp"],
            ]
            for k, v in charts["kpis"].items()
        ]
        keys = ["kpi", "current", "previous", "change", "change_pp"]
    elif name == "cohorts":
        width = max((len(c["shares"]) for c in charts["cohorts"]), default=0)
        keys = ["cohort", "size", *[f"month_{i}" for i in range(width)]]
        rows = [[c["cohort"], c["size"], *c["shares"]] for c in charts["cohorts"]]
    elif name == "sales":
        rows = [[r["month"], r["revenue"], r["partial"], "", "", ""] for r in charts["sales"]]
        rows += [
            [r["month"], "", "", r["forecast"], r["low"], r["high"]] for r in charts["forecast"]
        ]
        keys = ["month", "revenue", "partial", "forecast", "low", "high"]
    else:
        items = charts[name]
        keys = list(items[0].keys()) if items else []
        rows = [[_csv_value(k, item[k]) for k in keys] for item in items]
    return [_csv_title(k) for k in keys], rows


def _csv_value(key: str, value):
    if key == "segment" and value:
        return str(RfmSegment(value).label) if value in RfmSegment.values else value
    return value


def _russian_cell(value):
    """What Russian Excel reads as a number: a decimal comma; dates as дд.мм.гггг."""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, float | Decimal):
        return format(value, "f").replace(".", ",")
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return dt.date.fromisoformat(value).strftime("%d.%m.%Y")
        except ValueError:
            return value
    return value


@login_required
@require_GET
def chart_csv(request, name: str):
    """A chart's figures as CSV; in Russian the way Russian Excel opens it: `;`, a BOM, decimal
    commas and дд.мм.гггг dates."""
    if name not in CHARTS:
        raise Http404
    _form, period, store_id, currency = _filters(request)
    charts = _charts(request.user, period, store_id, currency, names=(name,))
    header, rows = _csv_rows(name, charts)
    russian = (get_language() or "").startswith("ru")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="clientele-{name}.csv"'
    if russian:
        response.write("\ufeff")
        rows = [[_russian_cell(value) for value in row] for row in rows]
    writer = csv.writer(response, delimiter=";" if russian else ",")
    writer.writerow(header)
    writer.writerows(rows)
    return response


@login_required
@require_POST
def recompute(request):
    if not selectors.can_recompute(request.user):
        raise Http404
    services.recompute_request()
    return redirect("analytics:dashboard")


@login_required
@require_GET
def recompute_status(request):
    if not selectors.can_view_dashboard(request.user):
        raise Http404
    run = selectors.latest_run()
    if run is None:
        return JsonResponse({"status": None, "label": ""})
    return JsonResponse(
        {
            "status": run.status,
            "label": run_label(run),
            "step": run.step,
            "progress": run.progress,
            "customers": run.customers,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
    )


@login_required
@require_GET
def loyalty_block(request):
    """The bonus programme's block of the dashboard (loaded by htmx): analytics reads loyalty's
    figures, scoped to the customers the user may see."""
    if not selectors.can_view_dashboard(request.user):
        return HttpResponse(_("You may not see the dashboard."), status=403)
    figures = dashboard_figures(user=request.user)
    return render(request, "loyalty/_dashboard.html", {"figures": figures})
