// The KPI page for a month (GET /v1/kpis for its local days): air, traffic, water, transit, crowds and the
// centre's own figures for the city and each district, with the daily series of the month as charts. Vietnamese and
// English; the key is the console's (localStorage), the language too.
import { bandLegend, el, get, lang, lineChart, number, percent, TZ } from "./history.js";

const LANG_STORE = "ioc.console.lang";
const BAND_COLOURS = { tot: "#00e400", trung_binh: "#ffff00", kem: "#ff7e00", xau: "#ff0000", rat_xau: "#8f3f97", nguy_hai: "#7e0023" };
const BAND_NAMES = {
  vi: { tot: "Tốt", trung_binh: "Trung bình", kem: "Kém", xau: "Xấu", rat_xau: "Rất xấu", nguy_hai: "Nguy hại" },
  en: { tot: "Good", trung_binh: "Moderate", kem: "Poor", xau: "Bad", rat_xau: "Very bad", nguy_hai: "Hazardous" },
};

const TEXT = {
  vi: {
    title: "KPI theo tháng",
    subtitle: "Trung tâm điều hành thông minh",
    back: "← Bảng điều hành",
    month: "Tháng",
    period: (a, b) => `Từ ${a} đến ${b} (giờ Hà Nội)`,
    noKey: "Chưa có khoá API: hãy đăng nhập ở bảng điều hành trước.",
    loadError: (e) => `Không tải được KPI: ${e}`,
    loading: "Đang tải…",
    city: "Toàn thành phố",
    scope: "Phạm vi",
    chartAqi: "VN_AQI ngày, trạm cao nhất",
    chartBoardings: "Lượt lên xe mỗi ngày, toàn thành phố",
    chartVisitors: "Khách mỗi ngày tại các khu đông người, toàn thành phố",
    visitors: "Khách",
    air: "Không khí (VN_AQI, QCVN 05:2023)",
    traffic: "Giao thông (giờ cao điểm ngày thường)",
    water: "Nước mặt (VN_WQI, QCVN 08:2023)",
    transit: "Vận tải công cộng",
    crowd: "Đám đông tại khu di tích, điểm du lịch",
    crowdNote: "Khách mỗi ngày: số người đông nhất cùng lúc trong khu (bộ đếm báo số người đang có mặt, không phải lượt vào), nên là cận dưới của số khách.",
    zones: "Khu",
    visitorsPerDay: "Khách/ngày (TB)",
    busiestDay: "Ngày đông nhất",
    hoursOver80: "Giờ ≥ 80 % sức chứa",
    peakShare: "Đỉnh, % sức chứa an toàn",
    od: (k) => `Luồng đi–đến của metro (chỉ các cặp có ít nhất ${k} chuyến)`,
    ops: "Xử lý cảnh báo của trung tâm",
    data: "Độ đầy đủ dữ liệu",
    stations: "Trạm",
    detectors: "Đầu đo",
    validDays: "Ngày hợp lệ",
    bandDays: "Số ngày theo mức",
    exceedance: "Ngày vượt PM2.5",
    pm25: "PM2.5 TB (µg/m³)",
    completeness: "Đầy đủ",
    tti: "TTI cao điểm",
    congested: "Giờ ùn tắc (E/F)",
    samples: "Mẫu",
    compliance: "Đạt loại QCVN 08",
    lowDo: "Giờ DO < 2 mg/L",
    boardings: "Lượt lên xe",
    perDay: "TB/ngày",
    origin: "Ga đi",
    destination: "Ga đến",
    trips: "Chuyến",
    suppressed: (n, c) => `${n} chuyến của ${c} cặp dưới ngưỡng đã bị ẩn.`,
    severityFeed: "Mức độ · nguồn",
    alerts: "Cảnh báo",
    mtta: "MTTA trung vị (phút)",
    mttr: "MTTR trung vị (phút)",
    ack15: "Xác nhận ≤ 15 phút",
    feed: "Nguồn",
    received: "Nhận / cần",
    kinds: { city: "thành phố", area: "quận", line: "tuyến", station: "ga/trạm", zone: "khu" },
    severity: { critical: "Nghiêm trọng", warning: "Cảnh báo", info: "Thông tin" },
  },
  en: {
    title: "Monthly KPIs",
    subtitle: "Intelligent Operations Centre",
    back: "← Console",
    month: "Month",
    period: (a, b) => `${a} to ${b} (Hanoi time)`,
    noKey: "No API key yet: sign in on the console first.",
    loadError: (e) => `Could not load the KPIs: ${e}`,
    loading: "Loading…",
    city: "Whole city",
    scope: "Scope",
    chartAqi: "Daily VN_AQI, worst station",
    chartBoardings: "Boardings per day, whole city",
    chartVisitors: "Visitors per day at the crowd zones, whole city",
    visitors: "Visitors",
    air: "Air (VN_AQI, QCVN 05:2023)",
    traffic: "Traffic (weekday peaks)",
    water: "Surface water (VN_WQI, QCVN 08:2023)",
    transit: "Public transit",
    crowd: "Crowds at heritage and tourist zones",
    crowdNote: "Daily visitors: the most people in a zone at once (the counters report the people present, not entries), so a lower bound of the visitors.",
    zones: "Zones",
    visitorsPerDay: "Visitors per day (mean)",
    busiestDay: "Busiest day",
    hoursOver80: "Hours ≥ 80 % of capacity",
    peakShare: "Peak, % of safe capacity",
    od: (k) => `Metro origin–destination flows (only pairs with at least ${k} trips)`,
    ops: "The centre's alert handling",
    data: "Data completeness",
    stations: "Stations",
    detectors: "Detectors",
    validDays: "Valid days",
    bandDays: "Days per band",
    exceedance: "PM2.5 exceedance days",
    pm25: "PM2.5 mean (µg/m³)",
    completeness: "Complete",
    tti: "Peak TTI",
    congested: "Congested hours (E/F)",
    samples: "Samples",
    compliance: "Meets QCVN 08 class",
    lowDo: "Hours DO < 2 mg/L",
    boardings: "Boardings",
    perDay: "Per day",
    origin: "From",
    destination: "To",
    trips: "Trips",
    suppressed: (n, c) => `${n} trips of ${c} pairs under the threshold are not shown.`,
    severityFeed: "Severity · feed",
    alerts: "Alerts",
    mtta: "Median MTTA (min)",
    mttr: "Median MTTR (min)",
    ack15: "Acknowledged ≤ 15 min",
    feed: "Feed",
    received: "Received / expected",
    kinds: { city: "city", area: "district", line: "line", station: "station", zone: "zone" },
    severity: { critical: "Critical", warning: "Warning", info: "Info" },
  },
};

const page = { kpis: null, areas: new Map(), sensors: new Map(), feeds: new Map(), error: null, loading: false };
const $ = (selector) => document.querySelector(selector);
const t = (key) => TEXT[lang()][key];

function monthSpan(month) {
  const [year, m] = month.split("-").map(Number);
  const last = new Date(Date.UTC(year, m, 0)).getUTCDate();
  return [`${month}-01`, `${month}-${String(last).padStart(2, "0")}`];
}

function thisMonth() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(new Date()).slice(0, 7);
}

function daysOf(first, last) {
  const days = [];
  for (let d = new Date(`${first}T00:00:00Z`); d <= new Date(`${last}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) {
    days.push(d.toISOString().slice(0, 10));
  }
  return days;
}

// A feed's name from the registry (GET /console/feeds.json), in the page's language.
function feedName(feed) {
  return page.feeds.get(feed)?.[lang()] || feed;
}

function scopeName(scope) {
  if (scope === "city") return t("city");
  return page.areas.get(scope) || page.sensors.get(scope) || scope;
}

function table(testid, headers, rows) {
  return el(
    "table",
    { class: "kpi-table", "data-testid": testid },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el(
      "tbody",
      {},
      ...rows.map(({ kind, scope, cells }) =>
        el("tr", { "data-kind": kind, "data-scope": scope }, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: c })))),
      ),
    ),
  );
}

function section(title, ...content) {
  return el("section", { class: "panel" }, el("div", { class: "panel-head" }, el("h2", { text: title })), ...content);
}

function bandBar(bandDays) {
  const total = Object.values(bandDays).reduce((a, b) => a + b, 0);
  const bar = el("span", { class: "band-bar" });
  for (const [band, days] of Object.entries(bandDays)) {
    if (!days) continue;
    const part = el("span", { title: `${BAND_NAMES[lang()][band]}: ${days}` });
    part.style.width = `${(100 * days) / total}%`;
    part.style.background = BAND_COLOURS[band];
    bar.append(part);
  }
  return bar;
}

const areaOrCity = (scope) => scope === "city" || page.areas.has(scope);
const kindOf = (scope) => (scope === "city" ? "city" : "area");

function render() {
  document.documentElement.lang = lang();
  document.title = `IOC · ${t("title")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const button of document.querySelectorAll("[data-lang]")) button.setAttribute("aria-pressed", String(button.dataset.lang === lang()));
  const message = $("#kpi-message");
  const sections = $("#kpi-sections");
  const [first, last] = monthSpan($("#month").value);
  $("#period").textContent = t("period")(first, last);
  message.hidden = !page.error;
  message.textContent = page.error || "";
  if (!page.kpis) {
    sections.replaceChildren(page.loading ? el("p", { class: "empty", text: t("loading") }) : "");
    return;
  }
  const k = page.kpis;
  const days = daysOf(k.firstDay, k.lastDay);
  const times = days.map((day) => Date.parse(`${day}T00:00:00+07:00`) / 1e3);
  const worstAqi = days.map((day) => {
    const values = k.airDays.filter((d) => d.day === day && d.dailyAqi != null).map((d) => d.dailyAqi);
    return values.length ? Math.max(...values) : null;
  });
  const city = k.transit.scopes.find((s) => s.kind === "city");
  const boardings = days.map((day) => city?.dailyBoardings[day] ?? null);
  const crowdCity = (k.crowd || []).find((s) => s.scope === "city");
  const visitors = days.map((day) => crowdCity?.dailyVisitors[day] ?? null);
  const aqiBands = Object.keys(BAND_COLOURS).map((key, n) => ({
    key,
    lower: [0, 50, 100, 150, 200, 300][n],
    upper: [50, 100, 150, 200, 300, null][n],
    colour: BAND_COLOURS[key],
    label: { vi: BAND_NAMES.vi[key], en: BAND_NAMES.en[key] },
  }));
  const charts = el("div", { class: "kpi-charts" });
  const aqiChart = el("figure", { class: "history-chart", "data-testid": "chart-aqi" }, el("figcaption", { text: t("chartAqi") }));
  const boardChart = el("figure", { class: "history-chart", "data-testid": "chart-boardings" }, el("figcaption", { text: t("chartBoardings") }));
  const visitorChart = el("figure", { class: "history-chart", "data-testid": "chart-visitors" }, el("figcaption", { text: t("chartVisitors") }));
  charts.append(aqiChart, boardChart, visitorChart);

  const air = k.air.filter((s) => areaOrCity(s.scope));
  const traffic = k.traffic.filter((s) => areaOrCity(s.scope));
  const water = k.water.filter((s) => areaOrCity(s.scope));
  const transit = k.transit.scopes.filter((s) => s.kind !== "station");
  const pairs = new Map();
  let suppressedTrips = 0;
  let suppressedCells = 0;
  for (const day of k.transit.odFlows) {
    suppressedTrips += day.suppressedTrips;
    suppressedCells += day.suppressedCells;
    for (const cell of day.cells) {
      const key = `${cell.origin}>${cell.destination}`;
      pairs.set(key, { ...cell, trips: (pairs.get(key)?.trips || 0) + cell.trips });
    }
  }
  const top = [...pairs.values()].sort((a, b) => b.trips - a.trips).slice(0, 10);
  const feedsData = k.dataCompleteness.filter((c) => areaOrCity(c.scope));
  const crowdKind = (scope) => (scope === "city" ? "city" : page.areas.has(scope) ? "area" : "zone");

  sections.replaceChildren(
    section(`${t("chartAqi")} · ${t("chartBoardings")} · ${t("chartVisitors")}`, charts),
    section(
      t("air"),
      table(
        "kpi-air",
        [t("scope"), t("stations"), t("validDays"), t("bandDays"), t("exceedance"), t("pm25"), t("completeness")],
        air.map((s) => ({
          kind: kindOf(s.scope),
          scope: s.scope,
          cells: [scopeName(s.scope), number(s.stations), `${s.daysValid}/${s.daysExpected}`, bandBar(s.bandDays),
                  number(s.exceedanceDays.pm25 || 0), number(s.pm25Mean, 1), percent(s.completeness)],
        })),
      ),
      bandLegend(aqiBands),
    ),
    section(
      t("traffic"),
      table(
        "kpi-traffic",
        [t("scope"), t("detectors"), t("tti"), t("congested"), t("completeness")],
        traffic.map((s) => ({
          kind: kindOf(s.scope),
          scope: s.scope,
          cells: [scopeName(s.scope), number(s.detectors), number(s.ttiPeak, 2), number(s.congestedHours), percent(s.completeness)],
        })),
      ),
    ),
    section(
      t("water"),
      table(
        "kpi-water",
        [t("scope"), t("stations"), t("samples"), t("compliance"), t("lowDo"), t("completeness")],
        water.map((s) => ({
          kind: kindOf(s.scope),
          scope: s.scope,
          cells: [scopeName(s.scope), number(s.stations), number(s.samples), percent(s.compliance), number(s.lowDoHours), percent(s.completeness)],
        })),
      ),
    ),
    section(
      t("transit"),
      table(
        "kpi-transit",
        [t("scope"), t("stations"), t("boardings"), t("perDay"), t("completeness")],
        transit.map((s) => ({
          kind: s.kind,
          scope: s.scope,
          cells: [`${scopeName(s.scope)} (${t("kinds")[s.kind]})`, number(s.stations), number(s.boardings),
                  number(s.boardings / days.length), percent(s.completeness)],
        })),
      ),
    ),
    section(
      t("crowd"),
      table(
        "kpi-crowd",
        [t("scope"), t("zones"), t("visitorsPerDay"), t("busiestDay"), t("hoursOver80"), t("peakShare"), t("completeness")],
        (k.crowd || []).map((s) => {
          const daily = Object.values(s.dailyVisitors);
          return {
            kind: crowdKind(s.scope),
            scope: s.scope,
            cells: [`${scopeName(s.scope)} (${t("kinds")[crowdKind(s.scope)]})`, number(s.zones),
                    number(daily.length ? s.visitors / daily.length : null), number(daily.length ? Math.max(...daily) : null),
                    number(s.hoursOver80, 2), s.peakShare == null ? number(null) : `${number(s.peakShare)} %`, percent(s.completeness)],
          };
        }),
      ),
      el("p", { class: "kpi-note", text: t("crowdNote") }),
    ),
    section(
      t("od")(k.transit.k),
      table(
        "kpi-od",
        [t("origin"), t("destination"), t("trips")],
        top.map((cell) => ({ kind: "pair", scope: `${cell.origin}>${cell.destination}`, cells: [scopeName(cell.origin), scopeName(cell.destination), number(cell.trips)] })),
      ),
      el("p", { class: "kpi-note", text: t("suppressed")(suppressedTrips, suppressedCells) }),
    ),
    section(
      t("ops"),
      table(
        "kpi-ops",
        [t("severityFeed"), t("alerts"), t("mtta"), t("mttr"), t("ack15")],
        k.operations.map((o) => ({
          kind: "ops",
          scope: `${o.severity}:${o.feed}`,
          cells: [`${t("severity")[o.severity] || o.severity} · ${feedName(o.feed)}`, number(o.alerts),
                  number(o.mttaMinutes?.median, 1), number(o.mttrMinutes?.median, 1), percent(o.acknowledgedWithin15Min)],
        })),
      ),
    ),
    section(
      t("data"),
      table(
        "kpi-data",
        [t("feed"), t("scope"), t("received"), t("completeness")],
        feedsData.map((c) => ({
          kind: kindOf(c.scope),
          scope: `${c.feed}:${c.scope}`,
          cells: [feedName(c.feed), scopeName(c.scope), `${number(c.received)} / ${number(c.expected)}`, percent(c.completeness)],
        })),
      ),
    ),
  );
  // Charts last: uPlot measures its container, which must be in the page.
  if (worstAqi.some((v) => v != null)) {
    lineChart(aqiChart, { times, values: worstAqi, label: "VN_AQI", unit: "VN_AQI", bands: aqiBands, colour: "#e6edf3" });
  }
  if (boardings.some((v) => v != null)) {
    lineChart(boardChart, { times, values: boardings, label: t("boardings"), unit: t("boardings") });
  }
  if (visitors.some((v) => v != null)) {
    lineChart(visitorChart, { times, values: visitors, label: t("visitors"), unit: t("visitors"), colour: "#ff7e00" });
  }
}

async function load() {
  if (!localStorage.getItem("ioc.console.key")) {
    page.error = t("noKey");
    render();
    return;
  }
  const [first, last] = monthSpan($("#month").value);
  page.loading = true;
  page.kpis = null;
  page.error = null;
  render();
  try {
    const [kpis, sensors, feeds] = await Promise.all([
      get("/v1/kpis", { from: first, to: last }),
      get("/v1/sensors"),
      fetch("/console/feeds.json", { cache: "no-store" }).then((r) => (r.ok ? r.json() : { feeds: [] })),
    ]);
    page.feeds = new Map(feeds.feeds.map((f) => [f.name, f.label]));
    if (sensors.ok) {
      const registered = sensors.data.items.filter((s) => s.registered);
      page.areas = new Map(registered.map((s) => [s.district, s.districtName]));
      page.sensors = new Map(registered.map((s) => [s.id, s.name]));
    }
    page.kpis = kpis.ok ? kpis.data : null;
    page.error = kpis.ok ? null : t("loadError")(kpis.detail);
  } catch (failure) {
    page.error = t("loadError")(failure.message);
  } finally {
    page.loading = false;
  }
  render();
}

function boot() {
  document.documentElement.lang = localStorage.getItem(LANG_STORE) === "en" ? "en" : "vi";
  const input = $("#month");
  const asked = new URLSearchParams(location.search).get("month");
  input.value = /^\d{4}-\d{2}$/.test(asked || "") ? asked : thisMonth();
  input.addEventListener("change", () => {
    if (input.value) load();
  });
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      localStorage.setItem(LANG_STORE, button.dataset.lang);
      document.documentElement.lang = button.dataset.lang;
      render();
    });
  }
  load();
}

boot();
