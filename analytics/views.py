"""The analytics dashboard page, its CSV downloads and the on-demand recompute."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .forms import DashboardFilterForm


def _filters(request) -> tuple[DashboardFilterForm, selectors.Period, int | None]:
    if not selectors.can_view_dashboard(request.user):
        raise Http404
    form = DashboardFilterForm(request.GET or None, user=request.user)
    if form.is_bound and form.is_valid():
        store = form.cleaned_data.get("store")
        return form, form.cleaned_data["period"], store.pk if store else None
    return form, selectors.default_period(), None


CHARTS = {
    "kpis": lambda user, period, store_id: selectors.dashboard_kpis(
        user, period=period, store_id=store_id
    ),
    "classes": lambda user, period, store_id: selectors.value_class_distribution(user),
    "pareto": lambda user, period, store_id: selectors.pareto_curve(user),
    "rfm": lambda user, period, store_id: selectors.rfm_grid(user),
    "cohorts": lambda user, period, store_id: selectors.cohort_retention(user, store_id=store_id),
    "sales": lambda user, period, store_id: selectors.monthly_sales(user, store_id=store_id),
    "stores": lambda user, period, store_id: selectors.store_comparison(
        user, period=period, store_id=store_id
    ),
}


def _charts(user, period, store_id, names=tuple(CHARTS)) -> dict:
    charts = {name: CHARTS[name](user, period, store_id) for name in names}
    if "sales" in charts:
        charts["forecast"] = selectors.sales_forecast(charts["sales"])
    return charts


@login_required
@require_GET
def dashboard(request):
    form, period, store_id = _filters(request)
    charts = _charts(request.user, period, store_id)
    fit = selectors.latest_fit()
    return render(
        request,
        "analytics/dashboard.html",
        {
            "form": form,
            "period": period,
            "previous": period.previous(),
            "charts": charts,
            "kpi_rows": [
                (name, selectors.KPI_LABELS[name], kpi, name.endswith("_rate"))
                for name, kpi in charts["kpis"].items()
            ],
            "query": request.GET.urlencode(),
            "fit": fit,
            "backtest_groups": (fit.backtest or {}).get("groups", []) if fit else [],
            "run": selectors.latest_run(),
            "can_recompute": request.user.has_perm("analytics.change_analyticssettings"),
        },
    )


def _csv_rows(name: str, charts: dict) -> tuple[list[str], list[list]]:
    if name == "kpis":
        rows = [[k, v["current"], v["previous"], v["change"]] for k, v in charts["kpis"].items()]
        return ["kpi", "current", "previous", "change"], rows
    if name == "cohorts":
        width = max((len(c["shares"]) for c in charts["cohorts"]), default=0)
        header = ["cohort", "size", *[f"month_{i}" for i in range(width)]]
        return header, [[c["cohort"], c["size"], *c["shares"]] for c in charts["cohorts"]]
    if name == "sales":
        rows = [[r["month"], r["revenue"], "", "", ""] for r in charts["sales"]]
        rows += [[r["month"], "", r["forecast"], r["low"], r["high"]] for r in charts["forecast"]]
        return ["month", "revenue", "forecast", "low", "high"], rows
    items = charts[name]
    header = list(items[0].keys()) if items else []
    return header, [[item[k] for k in header] for item in items]


@login_required
@require_GET
def chart_csv(request, name: str):
    if name not in CHARTS:
        raise Http404
    _form, period, store_id = _filters(request)
    header, rows = _csv_rows(name, _charts(request.user, period, store_id, names=(name,)))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="clientele-{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@login_required
@require_POST
def recompute(request):
    if not selectors.can_view_dashboard(request.user) or not request.user.has_perm(
        "analytics.change_analyticssettings"
    ):
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
        return JsonResponse({"status": None})
    return JsonResponse(
        {
            "status": run.status,
            "step": run.step,
            "progress": run.progress,
            "customers": run.customers,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }
    )
