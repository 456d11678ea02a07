"""A small server-rendered SVG bar chart of import API calls per day against the budget.

No JavaScript and no CDN: the portal's Content-Security-Policy stays strict, and the chart
renders in any browser and in the HTML the tests read. Bars over the budget are drawn in the
warning colour; the budget is a dashed line with its value.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from gtmsync.crm_import.schemas import UsageView

WIDTH, HEIGHT = 560, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 48, 28, 16


def usage_svg(usage: UsageView) -> Markup:
    days = usage.days
    peak = max([usage.budget, *(d.requests for d in days)]) or 1
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)

    def y(value: int) -> float:
        return PAD_TOP + plot_h - (value / peak) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-label="Dataverse API calls per day against the daily budget of {usage.budget}">',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" '
        f'y2="{PAD_TOP + plot_h}" stroke="#888"/>',
    ]
    for i, day in enumerate(days):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        top = y(day.requests)
        colour = "#c0392b" if day.requests > usage.budget else "#2e86de"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
            f'height="{PAD_TOP + plot_h - top:.1f}" fill="{colour}">'
            f"<title>{escape(day.day.isoformat())}: {day.requests} requests</title></rect>"
        )
        if i % max(1, len(days) // 7) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" font-size="10" '
                f'text-anchor="middle">{escape(day.day.strftime("%b %d"))}</text>'
            )
    budget_y = y(usage.budget)
    parts.append(
        f'<line class="budget" x1="{PAD_LEFT}" y1="{budget_y:.1f}" x2="{WIDTH - 8}" '
        f'y2="{budget_y:.1f}" stroke="#e67e22" stroke-dasharray="6 4"/>'
    )
    parts.append(f'<text x="4" y="{budget_y + 4:.1f}" font-size="10">budget {usage.budget}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
