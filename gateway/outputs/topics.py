"""The gateway's own MQTT topics, all under ``<topic_prefix>/<gateway id>``.

One place names them, for everything that publishes or listens there: the
availability of the link, the events topic, Home Assistant's state topics and the
virtual command topics the router listens on.

>>> topics = GatewayTopics("reorder", "kitchen")
>>> topics.status, topics.events
('reorder/kitchen/status', 'reorder/kitchen/events')
>>> topics.press("laundry"), topics.state("product", "tea")
('reorder/kitchen/laundry/press', 'reorder/kitchen/state/product/tea')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayTopics:
    """The topics of one gateway (``mqtt.topic_prefix`` and ``gateway.id``).

    >>> GatewayTopics("home", "hall").base
    'home/hall'
    """

    prefix: str
    gateway_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.gateway_id}"

    @property
    def status(self) -> str:
        """``online``/``offline``, retained; the link's last will."""
        return f"{self.base}/status"

    @property
    def events(self) -> str:
        """One JSON message per decision."""
        return f"{self.base}/events"

    def state(self, kind: str, name: str | None = None) -> str:
        """Retained state: ``state/gateway``, ``state/<kind>/<name>``."""
        return f"{self.base}/state/{kind}" + ("" if name is None else f"/{name}")

    def press(self, button: str) -> str:
        """A virtual press of ``button`` (Home Assistant's button entity sends here)."""
        return f"{self.base}/{button}/press"

    def cancel(self, button: str) -> str:
        """A virtual long press (cancel) of ``button``."""
        return f"{self.base}/{button}/cancel"

    def confirm(self, product: str) -> str:
        """A yes for the order of ``product`` that waits for one (Home Assistant's
        Confirm button sends here). Under ``product/`` so that no button's name can
        make the same topic."""
        return f"{self.base}/product/{product}/confirm"

    def sim_gpio(self, pin: int) -> str:
        """Demo only: drive the mock GPIO pin ``pin``."""
        return f"{self.base}/sim/gpio/{pin}"
