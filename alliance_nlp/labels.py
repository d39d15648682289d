"""The six alliance-marker labels (../shared/spec/alliance-markers.md); their order is fixed."""

LABELS: tuple[str, ...] = ("goal", "task", "bond", "rupture_withdrawal", "rupture_confrontation", "repair")
RUPTURE_LABELS: tuple[str, ...] = ("rupture_withdrawal", "rupture_confrontation")
