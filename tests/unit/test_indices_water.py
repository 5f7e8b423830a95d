"""VN_WQI (Decision 1460/QĐ-TCMT) and QCVN 08:2023 classes. Expected values are worked out here by hand
from water_quality.md's tables, not by calling the code under test."""

import math
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from ioc.feeds.water.model import WaterQualityObserved
from ioc.indices.water import (
    combine_wqi_groups,
    do_percent_saturation,
    do_saturation,
    qcvn08_class,
    qcvn08_classes,
    vn_wqi,
    wqi_band,
    wqi_groups,
    wqi_parameters,
    wqi_sub_index,
)


def falling(value: float, lo: float, hi: float, q_lo: float, q_hi: float) -> float:
    """Linear between (lo, q_lo) and (hi, q_hi)."""
    return q_lo + (q_hi - q_lo) * (value - lo) / (hi - lo)


def saturation(temperature: float) -> float:
    t = temperature
    return 14.652 - 0.41022 * t + 0.0079910 * t**2 - 0.000077774 * t**3


# ---- sub-indices ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        # BOD5 ≤4 | 6 | 15 | 25 | ≥50
        ("bod5", 2, 100), ("bod5", 4, 100), ("bod5", 5, 87.5), ("bod5", 10, falling(10, 6, 15, 75, 50)),
        ("bod5", 25, 25), ("bod5", 37.5, 17.5), ("bod5", 50, 10), ("bod5", 80, 10),
        # COD ≤10 | 15 | 30 | 50 | ≥150
        ("cod", 20, falling(20, 15, 30, 75, 50)), ("cod", 100, falling(100, 50, 150, 25, 10)),
        # TOC like BOD5
        ("toc", 6, 75),
        # N-NH4 <0.3 | 0.3 | 0.6 | 0.9 | ≥5: a step from 100 to 75 at 0.3
        ("nh4_n", 0.29, 100), ("nh4_n", 0.3, 75), ("nh4_n", 0.45, 62.5), ("nh4_n", 0.9, 25),
        ("nh4_n", 3.0, falling(3.0, 0.9, 5, 25, 10)), ("nh4_n", 5, 10), ("nh4_n", 30, 10),
        # N-NO3 ≤2 | 5 | 10 | 15 | >15: a step from 25 to 10 just above 15
        ("no3_n", 2, 100), ("no3_n", 3.5, 87.5), ("no3_n", 15, 25), ("no3_n", 15.01, 10),
        # P-PO4 ≤0.1 | 0.2 | 0.3 | 0.5 | ≥4
        ("po4_p", 0.15, 87.5), ("po4_p", 2.25, falling(2.25, 0.5, 4, 25, 10)),
        # Coliform ≤2500 | 5000 | 7500 | 10000 | >10000; E. coli ≤20 | 50 | 100 | 200 | >200
        ("coliform", 3750, 87.5), ("coliform", 10000, 25), ("coliform", 10001, 10), ("coliform", 1e6, 10),
        ("e_coli", 75, 62.5), ("e_coli", 200, 25), ("e_coli", 201, 10),
        # Metals
        ("arsenic", 0.015, 87.5), ("arsenic", 0.1, 25), ("arsenic", 0.11, 10),
        ("cadmium", 0.0049, 100), ("cadmium", 0.005, 75), ("cadmium", 0.0065, 62.5),
        ("cadmium", 0.1, 10),
        ("lead", 0.019, 100), ("lead", 0.02, 75), ("lead", 0.275, falling(0.275, 0.05, 0.5, 25, 10)),
        ("chromium_vi", 0.03, 62.5), ("copper", 0.35, 62.5), ("copper", 2.0, 10), ("zinc", 1.25, 62.5),
        ("mercury", 0.0009, 100), ("mercury", 0.001, 75), ("mercury", 0.00175, 37.5),
        # Steps: N-NO2 and pesticides, 100 at or below the limit, else 10
        ("no2_n", 0.05, 100), ("no2_n", 0.051, 10),
        ("aldrin", 0.1, 100), ("aldrin", 0.11, 10), ("bhc", 0.02, 100), ("bhc", 0.021, 10),
        ("dieldrin", 0.1, 100), ("ddts", 1.0, 100), ("ddts", 1.1, 10), ("heptachlor", 0.2, 100),
        ("heptachlor", 0.3, 10),
        # pH: 10 | 50 at 5.5 rising to 100 at 6.0 | 100 to 8.5 | falling to 50 at 9.0 | 10
        ("ph", 5.4, 10), ("ph", 5.5, 50), ("ph", 5.75, 75), ("ph", 6.0, 100), ("ph", 7.2, 100),
        ("ph", 8.5, 100), ("ph", 8.75, 75), ("ph", 9.0, 50), ("ph", 9.1, 10),
        # DO %: 10 below 20 | 20→25, 50→50, 75→75, 88→100 | 100 to 112 | 125→75, 150→50, 200→25 | 10
        ("dissolved_oxygen_percent", 19, 10), ("dissolved_oxygen_percent", 20, 25),
        ("dissolved_oxygen_percent", 35, 37.5), ("dissolved_oxygen_percent", 81.5, 87.5),
        ("dissolved_oxygen_percent", 100, 100), ("dissolved_oxygen_percent", 112, 100),
        ("dissolved_oxygen_percent", 118.5, 87.5), ("dissolved_oxygen_percent", 175, 37.5),
        ("dissolved_oxygen_percent", 200, 25), ("dissolved_oxygen_percent", 201, 10),
    ],
)  # fmt: skip
def test_sub_index(parameter, value, expected):
    assert wqi_sub_index(parameter, value) == pytest.approx(expected)


def test_sub_index_refuses_unknown_parameters_and_negative_values():
    with pytest.raises(ValueError, match="no VN_WQI sub-index"):
        wqi_sub_index("turbidity", 5)
    with pytest.raises(ValueError, match="≥ 0"):
        wqi_sub_index("bod5", -1)


def test_do_saturation():
    # 20 °C: 14.652 − 8.2044 + 3.1964 − 0.622192 = 9.021808 mg/L.
    assert do_saturation(20) == pytest.approx(9.021808)
    assert do_saturation(25) == pytest.approx(saturation(25))
    assert do_percent_saturation(4.5, 20) == pytest.approx(100 * 4.5 / 9.021808)


# ---- whole index ------------------------------------------------------------------------------------------
SAMPLE = {
    "ph": 7.2,  # 100
    "dissolved_oxygen": 6.0,
    "temperature": 25.0,
    "bod5": 10.0,  # between 6 (75) and 15 (50)
    "cod": 20.0,  # between 15 (75) and 30 (50)
    "nh4_n": 0.45,  # 62.5
    "coliform": 3750.0,  # 87.5
    "e_coli": 75.0,  # 62.5
    "turbidity": 12.0,  # not a VN_WQI parameter: ignored
}


def expected_sample_groups() -> tuple[float, float, float]:
    do_percent = 100 * 6.0 / saturation(25.0)  # ≈ 73.4 %: between 50 (50) and 75 (75)
    q_do = falling(do_percent, 50, 75, 50, 75)
    group_iv = (q_do + falling(10, 6, 15, 75, 50) + falling(20, 15, 30, 75, 50) + 62.5) / 4
    group_v = (87.5 + 62.5) / 2
    return 100.0, group_iv, group_v


def test_whole_index_cube_root():
    group_i, group_iv, group_v = expected_sample_groups()
    expected = (group_i / 100) * (group_iv**2 * group_v) ** (1 / 3)
    result = vn_wqi(SAMPLE)
    assert result.sufficient and result.insufficient is None
    assert result.groups == pytest.approx({"I": group_i, "IV": group_iv, "V": group_v})
    # IV ≈ (73.39 + 63.89 + 66.67 + 62.5)/4 = 66.61, V = 75: (66.61²·75)^(1/3) ≈ 69.30 → 69.
    assert result.value == math.floor(expected + 0.5) == 69
    assert result.band.key == "trung_binh"
    assert result.dominant in {"nh4_n", "e_coli"}  # both 62.5, the lowest
    assert result.dominant == "nh4_n"  # ties go to the first in table order
    assert result.variant == "cube_root"


def test_whole_index_sqrt_variant():
    group_i, group_iv, group_v = expected_sample_groups()
    expected = (group_i / 100) * math.sqrt(group_iv * group_v)
    assert vn_wqi(SAMPLE, variant="sqrt").value == math.floor(expected + 0.5)


def test_geometric_means_of_pesticides_and_metals():
    sample = {
        **SAMPLE,
        "ph": 5.75,  # 75
        "aldrin": 0.2,  # 10
        "ddts": 0.5,  # 100
        "copper": 0.35,  # 62.5
        "lead": 0.01,  # 100
    }
    group_ii = math.sqrt(10 * 100)
    group_iii = math.sqrt(62.5 * 100)
    _, group_iv, group_v = expected_sample_groups()
    expected = 0.75 * (group_ii / 100) * (group_iii / 100) * (group_iv**2 * group_v) ** (1 / 3)
    result = vn_wqi(sample)
    assert result.groups["II"] == pytest.approx(group_ii)
    assert result.groups["III"] == pytest.approx(group_iii)
    assert result.value == math.floor(expected + 0.5)
    assert result.dominant == "aldrin"


def test_without_group_v_both_variants_use_group_iv():
    sample = {"ph": 5.75, "bod5": 4.0, "cod": 10.0, "po4_p": 0.15, "arsenic": 0.015}
    group_iv = (100 + 100 + 87.5) / 3
    expected = 0.75 * 0.875 * group_iv
    assert vn_wqi(sample, "cube_root").value == vn_wqi(sample, "sqrt").value == math.floor(expected + 0.5)


def test_combine_wqi_groups_by_hand():
    groups = {"I": 50.0, "IV": 80.0, "V": 40.0}
    assert combine_wqi_groups(groups, "cube_root") == pytest.approx(0.5 * (80**2 * 40) ** (1 / 3))
    assert combine_wqi_groups(groups, "sqrt") == pytest.approx(0.5 * math.sqrt(80 * 40))
    with pytest.raises(ValueError, match="variant"):
        combine_wqi_groups(groups, "mean")
    with pytest.raises(ValueError, match="group IV"):
        combine_wqi_groups({"I": 50.0, "V": 40.0})


def test_group_means():
    groups = wqi_groups({"bod5": 50.0, "cod": 100.0, "copper": 25.0, "zinc": 100.0})
    assert groups == pytest.approx({"IV": 75.0, "III": 50.0})


# ---- data sufficiency -------------------------------------------------------------------------------------
def test_two_groups_are_not_enough():
    result = vn_wqi({"ph": 7.0, "bod5": 5.0, "cod": 12.0, "nh4_n": 0.1})
    assert result.value is None and result.band is None and not result.sufficient
    assert "2 of 5" in result.insufficient and "I, IV" in result.insufficient
    assert result.sub_indices["bod5"] == pytest.approx(87.5)  # the sub-indices are still there


def test_group_iv_needs_three_parameters():
    result = vn_wqi({"ph": 7.0, "bod5": 5.0, "cod": 12.0, "coliform": 100.0})
    assert "group IV has 2 parameters (bod5, cod)" in result.insufficient


def test_oxygen_without_temperature_is_explained():
    result = vn_wqi({"ph": 7.0, "bod5": 5.0, "cod": 12.0, "dissolved_oxygen": 6.0, "coliform": 100.0})
    assert "dissolved_oxygen counts only with temperature" in result.insufficient
    sample = {
        "ph": 7.0,
        "bod5": 5.0,
        "cod": 12.0,
        "dissolved_oxygen": 6.0,
        "temperature": 25.0,
        "coliform": 100.0,
    }
    with_temperature = vn_wqi(sample)
    assert with_temperature.sufficient


def test_given_do_percent_is_used_as_is():
    result = vn_wqi({"ph": 7.0, "bod5": 4.0, "cod": 10.0, "dissolved_oxygen_percent": 35.0, "e_coli": 10.0})
    assert result.sub_indices["dissolved_oxygen_percent"] == pytest.approx(37.5)
    assert result.value == math.floor((((100 + 100 + 37.5) / 3) ** 2 * 100) ** (1 / 3) + 0.5)


def test_a_typical_hanoi_urban_river_is_very_heavily_polluted_or_bad():
    # Tô Lịch-like: nearly anoxic, BOD5 60, N-NH4 20, coliform 10^6 → every group IV/V sub-index is 10.
    sample = {"ph": 7.1, "dissolved_oxygen": 0.5, "temperature": 28.0, "bod5": 60.0, "cod": 160.0,
              "nh4_n": 20.0, "coliform": 1e6, "e_coli": 1e5}  # fmt: skip
    result = vn_wqi(sample)
    assert result.groups["IV"] == pytest.approx(10) and result.groups["V"] == pytest.approx(10)
    assert (result.value, result.band.key) == (10, "kem")


# ---- bands ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "key"),
    [(100, "rat_tot"), (91, "rat_tot"), (90.5, "rat_tot"), (90.4, "tot"), (90, "tot"), (76, "tot"),
     (75, "trung_binh"), (51, "trung_binh"), (50, "xau"), (26, "xau"), (25, "kem"), (10, "kem"),
     (9.5, "kem"), (9, "o_nhiem_rat_nang"), (0, "o_nhiem_rat_nang")],
)  # fmt: skip
def test_band_boundaries(value, key):
    assert wqi_band(value).key == key


def test_bands_carry_the_published_names_and_colours():
    published = {
        100: ("Rất tốt", "Very good", (51, 51, 255)),
        80: ("Tốt", "Good", (0, 228, 0)),
        60: ("Trung bình", "Medium", (255, 255, 0)),
        30: ("Xấu", "Poor", (255, 126, 0)),
        15: ("Kém", "Bad", (255, 0, 0)),
        5: ("Ô nhiễm rất nặng", "Very heavily polluted", (126, 0, 35)),
    }
    for value, (vi, en, rgb) in published.items():
        band = wqi_band(value)
        assert (band.name_vi, band.name_en, band.rgb) == (vi, en, rgb)
        assert band.fit_for_vi and band.fit_for_en
    assert "drinking" in wqi_band(95).fit_for_en and "toxic" in wqi_band(5).fit_for_en


# ---- QCVN 08:2023 classes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ({"ph": 7.0, "bod5": 3.0, "dissolved_oxygen": 7.0}, "A"),
        ({"ph": 7.0, "bod5": 5.0, "dissolved_oxygen": 7.0}, "B"),
        ({"ph": 6.2, "bod5": 3.0}, "B"),
        ({"cod": 18.0, "coliform": 900.0}, "C"),
        ({"dissolved_oxygen": 3.9}, "D"),
        ({"ph": 9.0}, "D"),
        ({"tss": 150.0}, "C"),  # D also needs floating waste, which a number cannot show
        ({"e_coli": 1500.0, "total_n": 0.6, "total_p": 0.31}, "C"),
        ({"e_coli": 1501.0}, "D"),
    ],
)
def test_qcvn08_class(sample, expected):
    assert qcvn08_class(sample) == expected


def test_qcvn08_classes_per_parameter_and_empty_sample():
    assert qcvn08_classes({"ph": 7.0, "bod5": 12.0, "temperature": 25.0}) == {"ph": "A", "bod5": "D"}
    with pytest.raises(ValueError, match="no QCVN 08 parameter"):
        qcvn08_class({"temperature": 25.0})


# ---- the data file ----------------------------------------------------------------------------------------
def test_parameter_names_follow_the_water_feed():
    feed_fields = {measure.field for measure in WaterQualityObserved.measures}
    feed_parameters = {"ph", "bod5", "cod", "toc", "nh4_n", "no3_n", "no2_n", "po4_p", "coliform", "e_coli"}
    assert feed_parameters <= feed_fields
    assert feed_parameters <= set(wqi_parameters())


def test_the_table_file_ships_with_the_package():
    assert files("ioc.indices").joinpath("vn_wqi.yaml").is_file()
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["ioc.indices"]
