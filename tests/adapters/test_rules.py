"""The departments' rules: what each decides, and that every decision fits its response schema."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adapters._documents import add_months, document_number, money
from adapters.architecture import rules as architecture
from adapters.improvement import rules as improvement
from adapters.land_property.rules import plot_info
from adapters.urban_permits import rules as urban_permits
from exchange.catalog import Catalog
from exchange.envelope.model import Kind
from exchange.node import Reject
from tests.adapters._schemas import fits
from tests.catalog._city import example

TODAY = date(2026, 3, 2)
REQUEST_ID = "3f9a1c2b-0000-4000-8000-000000000001"
PARK = "16:50:080205:311"
UNKNOWN = "16:50:999901:1"


def trees(**changes: Any) -> dict[str, Any]:
    """The example tree-felling application with ``changes``."""
    return example("tree-felling-permit", Kind.REQUEST) | changes


class TestDocuments:
    """Numbers and dates of issued documents."""

    def test_number_comes_from_the_request_id(self) -> None:
        """The same request always gets the same number."""
        assert document_number("TF", REQUEST_ID, TODAY) == "TF-2026-3F9A1C2B"

    def test_months_end_at_the_shorter_month(self) -> None:
        """January 31 plus one month is the last day of February."""
        assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
        assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)

    def test_money_has_two_decimals(self) -> None:
        """Roubles as the schema's decimal string."""
        assert money(24000) == "24000.00"


class TestTreeFelling:
    """The Committee of External Improvement on tree felling."""

    def test_sanitary_felling_is_granted_free_with_replanting(self, city_catalog: Catalog) -> None:
        """Dry and emergency trees cost nothing; the example's response is what it gets."""
        decision = improvement.tree_felling(
            trees(), plot_info("16:50:011302:45"), REQUEST_ID, TODAY
        )
        assert decision["decision"] == "granted"
        assert decision["compensation_rub"] == "0.00"
        assert decision["valid_until"] == "2026-09-02"
        assert decision["replanting"] == example("tree-felling-permit", Kind.RESPONSE)["replanting"]
        fits(city_catalog, "tree-felling-permit", Kind.RESPONSE, decision)

    def test_healthy_trees_for_construction_are_paid_for(self, city_catalog: Catalog) -> None:
        """Without compensatory planting, each living tree felled is paid for."""
        application = trees(
            reason="construction",
            compensatory_planting=False,
            trees=[
                {"species": "lime", "count": 2, "condition": "healthy"},
                {"species": "elm", "count": 1, "condition": "weakened"},
            ],
        )
        decision = improvement.tree_felling(
            application, plot_info("16:50:011302:45"), REQUEST_ID, TODAY
        )
        assert decision["compensation_rub"] == money(2 * 24_000 + 9_500)
        assert "replanting" not in decision
        fits(city_catalog, "tree-felling-permit", Kind.RESPONSE, decision)

    def test_unregistered_plot_is_refused(self, city_catalog: Catalog) -> None:
        """A plot Land and Property does not know cannot get a permit."""
        decision = improvement.tree_felling(trees(), plot_info(UNKNOWN), REQUEST_ID, TODAY)
        assert decision["decision"] == "refused"
        assert UNKNOWN in decision["refusal_reasons"][0]
        fits(city_catalog, "tree-felling-permit", Kind.RESPONSE, decision)

    def test_healthy_trees_in_a_protected_area_only_when_dangerous(self) -> None:
        """Landscaping cannot fell healthy park trees; an emergency can."""
        healthy = [{"species": "oak", "count": 1, "condition": "healthy"}]
        park = plot_info(PARK)
        refused = improvement.tree_felling(
            trees(reason="landscaping", trees=healthy), park, REQUEST_ID, TODAY
        )
        granted = improvement.tree_felling(
            trees(reason="emergency", trees=healthy), park, REQUEST_ID, TODAY
        )
        assert refused["decision"] == "refused"
        assert granted["decision"] == "granted"


class TestStormwater:
    """The Committee of External Improvement on stormwater conditions."""

    def test_example_is_issued_at_the_allowed_discharge(self, city_catalog: Catalog) -> None:
        """1250.75 m2 may discharge 15.0 l/s; 18.4 planned needs a retention tank."""
        application = example("stormwater-conditions", Kind.REQUEST)
        decision = improvement.stormwater(application, "K-17 on pr. Pobedy", REQUEST_ID, TODAY)
        assert decision["decision"] == "issued"
        assert decision["max_discharge_l_per_s"] == "15.0"
        assert decision["connection_point"] == "Storm sewer well K-17 on pr. Pobedy"
        assert any("Retention tank" in r for r in decision["requirements"])
        fits(city_catalog, "stormwater-conditions", Kind.RESPONSE, decision)

    def test_far_too_much_water_is_refused(self, city_catalog: Catalog) -> None:
        """More than one and a half times the allowed discharge is refused."""
        application = example("stormwater-conditions", Kind.REQUEST)
        application["planned_discharge_l_per_s"] = "40"
        decision = improvement.stormwater(application, None, REQUEST_ID, TODAY)
        assert decision["decision"] == "refused"
        fits(city_catalog, "stormwater-conditions", Kind.RESPONSE, decision)


class TestExcavation:
    """Urban-Planning Permits on excavation permits."""

    def application(self, **changes: Any) -> dict[str, Any]:
        """The example application (works 2026-05-12 to 2026-05-26) with ``changes``."""
        return example("excavation-permit", Kind.REQUEST) | changes

    def test_example_is_issued_for_the_works_dates(self, city_catalog: Catalog) -> None:
        """The permit covers the works; the restoration deadline is the applicant's date."""
        decision = urban_permits.excavation(self.application(), REQUEST_ID, TODAY)
        assert decision == {
            "decision": "issued",
            "permit_number": "EX-2026-3F9A1C2B",
            "valid_from": "2026-05-12",
            "valid_until": "2026-05-26",
            "restoration_deadline": "2026-06-05",
        }
        fits(city_catalog, "excavation-permit", Kind.RESPONSE, decision)

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"action": "renew"}, "previous_permit_number"),
            ({"end_date": "2026-08-01", "restoration_date": "2026-08-10"}, "at most 60 days"),
            ({"restoration_date": "2026-07-30"}, "within 30 days"),
            ({"disturbed_elements": ["playground"]}, "playground season"),
        ],
    )
    def test_refusals(self, city_catalog: Catalog, changes: dict[str, Any], reason: str) -> None:
        """Each broken rule is named in the refusal."""
        decision = urban_permits.excavation(self.application(**changes), REQUEST_ID, TODAY)
        assert decision["decision"] == "refused"
        assert any(reason in r for r in decision["refusal_reasons"])
        fits(city_catalog, "excavation-permit", Kind.RESPONSE, decision)

    def test_works_in_the_past_are_refused(self) -> None:
        """A permit is not issued for works that started before the decision."""
        decision = urban_permits.excavation(self.application(), REQUEST_ID, date(2026, 6, 1))
        assert decision["decision"] == "refused"

    def test_renewal_keeps_the_permit_number(self) -> None:
        """A renewal extends the named permit."""
        application = self.application(action="renew", previous_permit_number="EX-2026-1032")
        decision = urban_permits.excavation(application, REQUEST_ID, TODAY)
        assert decision["decision"] == "renewed"
        assert decision["permit_number"] == "EX-2026-1032-R"

    @pytest.mark.parametrize(
        "changes", [{"end_date": "2026-05-01"}, {"restoration_date": "2026-05-20"}]
    )
    def test_contradictory_dates_are_rejected(self, changes: dict[str, Any]) -> None:
        """Dates that contradict each other are a fault (invalid-content), not a decision."""
        with pytest.raises(Reject) as caught:
            urban_permits.excavation(self.application(**changes), REQUEST_ID, TODAY)
        assert caught.value.code == "invalid-content"


class TestArchitecture:
    """The Department of Architecture on appearance and signage."""

    def test_heritage_zone_approval_has_conditions(self, city_catalog: Catalog) -> None:
        """A facade in a heritage protection zone keeps its historic colours."""
        application = example("architectural-appearance", Kind.REQUEST)
        extract = urban_permits.plan_extract(application["object"]["cadastral_number"])
        decision = architecture.appearance(application, extract, REQUEST_ID, TODAY)
        assert decision["decision"] == "approved"
        assert decision["decision_date"] == "2026-03-02"
        assert any("historic colour" in c for c in decision["conditions"])
        fits(city_catalog, "architectural-appearance", Kind.RESPONSE, decision)

    def test_canopy_beyond_red_lines_is_refused(self, city_catalog: Catalog) -> None:
        """Red lines crossing the plot forbid a canopy."""
        application = example("architectural-appearance", Kind.REQUEST)
        extract = urban_permits.plan_extract("16:50:040312:19")
        decision = architecture.appearance(application, extract, REQUEST_ID, TODAY)
        assert decision["decision"] == "refused"
        assert "red lines" in decision["refusal_reasons"][0]
        fits(city_catalog, "architectural-appearance", Kind.RESPONSE, decision)

    def test_unknown_plot_is_refused(self) -> None:
        """A plot outside the urban-planning documentation cannot be approved."""
        application = example("architectural-appearance", Kind.REQUEST)
        extract = urban_permits.plan_extract(UNKNOWN)
        assert architecture.appearance(application, extract, REQUEST_ID, TODAY)["decision"] == (
            "refused"
        )

    def test_example_signage_covers_a_heritage_cornice(self, city_catalog: Catalog) -> None:
        """A 4.2 m fascia sign on ul. Baumana is refused, as the example response says."""
        decision = architecture.signage(example("signage-project", Kind.REQUEST), REQUEST_ID, TODAY)
        assert decision["decision"] == "refused"
        assert "cornice" in decision["refusal_reasons"][0]
        fits(city_catalog, "signage-project", Kind.RESPONSE, decision)

    def test_modest_signage_is_approved(self, city_catalog: Catalog) -> None:
        """Signs within the limits get an approval number."""
        application = example("signage-project", Kind.REQUEST)
        application["signs"][0]["width_mm"] = 2400
        decision = architecture.signage(application, REQUEST_ID, TODAY)
        assert decision == {
            "decision": "approved",
            "approval_number": "SP-2026-3F9A1C2B",
            "decision_date": "2026-03-02",
        }
        fits(city_catalog, "signage-project", Kind.RESPONSE, decision)


class TestRegisters:
    """Land and Property's register and Urban-Planning Permits' zoning plan."""

    @pytest.mark.parametrize("number", ["16:50:011302:45", PARK, UNKNOWN])
    def test_answers_fit_their_schemas(self, city_catalog: Catalog, number: str) -> None:
        """Found or not, the answers fit land-plot-info's and urban-plan-extract's schemas."""
        fits(city_catalog, "land-plot-info", Kind.RESPONSE, plot_info(number))
        fits(city_catalog, "urban-plan-extract", Kind.RESPONSE, urban_permits.plan_extract(number))

    def test_register_matches_the_example(self) -> None:
        """The example land-plot-info response is the register's entry for its plot."""
        response = example("land-plot-info", Kind.RESPONSE)
        assert plot_info(response["cadastral_number"]) == response

    def test_zoning_matches_the_example(self) -> None:
        """The example urban-plan-extract response is the plan's entry for its plot."""
        response = example("urban-plan-extract", Kind.RESPONSE)
        assert urban_permits.plan_extract(response["cadastral_number"]) == response
