// The city over time in the console: a sensor's last 24 hours and 7 days as charts over its standard's bands
// (GET /v1/history), and per area the KPI tiles of the last 14 days with sparklines (GET /v1/kpis). Beside
// console.js, not inside it: it reads the same key and language (localStorage, <html lang>) and opens a
// sensor's chart when the map's sensor is clicked. Charts by uPlot (vendor/, MIT), served by the API.
import uPlot from "./vendor/uPlot.esm.js";

export const TZ = "Asia/Ho_Chi_Minh";
const KEY_STORE = "ioc.console.key";
// The measure a sensor's chart shows, and the windows read for 24 hours and for 7 days.
const MEASURE = { air: "pm25", traffic: "average_vehicle_speed", water: "dissolved_oxygen", crowd: "people_count" };
const WINDOWS = { air: ["5m", "1h"], traffic: ["5m", "1h"], water: ["15m", "1h"], crowd: ["5m", "1h"] };
const SPANS = [
  { key: "day", hours: 24, window: 0 },
  { key: "week", hours: 24 * 7, window: 1 },
];
const KPI_DAYS = 14;
const KPI_EVERY_MS = 5 * 60_000;
// The area tiles load when an operator opens them (and stay open for them): a live screen asks the
// history store nothing it is not shown.
const KPI_OPEN_STORE = "ioc.console.areaKpis";

export const TEXT = {
  vi: {
    day: "24 giờ qua",
    week: "7 ngày qua",
    close: "Đóng",
    noMeasure: "Cảm biến này đếm lượt, không có chuỗi đo để vẽ.",
    noHistory: "Chưa có lịch sử cho khoảng này.",
    historyError: (e) => `Không tải được lịch sử: ${e}`,
    measure: {
      pm25: "PM2.5",
      average_vehicle_speed: "Tốc độ trung bình",
      dissolved_oxygen: "Oxy hoà tan",
      people_count: "Số người trong khu",
    },
    areaKpis: `KPI theo quận, ${KPI_DAYS} ngày qua`,
    monthPage: "Trang KPI theo tháng →",
    show: "Hiện",
    hide: "Ẩn",
    aqi: "VN_AQI ngày (trạm cao nhất)",
    boardings: "Lượt lên xe/ngày",
    completeness: "Đủ dữ liệu (nguồn thấp nhất)",
    kpiError: (e) => `Không tải được KPI: ${e}`,
    none: "—",
  },
  en: {
    day: "Last 24 hours",
    week: "Last 7 days",
    close: "Close",
    noMeasure: "This sensor counts taps: there is no measured series to plot.",
    noHistory: "No history for this span yet.",
    historyError: (e) => `Could not load the history: ${e}`,
    measure: {
      pm25: "PM2.5",
      average_vehicle_speed: "Mean speed",
      dissolved_oxygen: "Dissolved oxygen",
      people_count: "People in the zone",
    },
    areaKpis: `KPIs per district, last ${KPI_DAYS} days`,
    monthPage: "Monthly KPI page →",
    show: "Show",
    hide: "Hide",
    aqi: "Daily VN_AQI (worst station)",
    boardings: "Boardings per day",
    completeness: "Data completeness (worst feed)",
    kpiError: (e) => `Could not load the KPIs: ${e}`,
    none: "—",
  },
};

export const lang = () => (document.documentElement.lang === "en" ? "en" : "vi");
export const tr = (key) => TEXT[lang()][key];
const locale = () => (lang() === "en" ? "en-GB" : "vi-VN");

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (value !== false && value != null) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

export function number(value, digits = 0) {
  if (value == null || Number.isNaN(value)) return TEXT[lang()].none;
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}

export function percent(share) {
  return share == null ? TEXT[lang()].none : `${number(share * 100, 0)} %`;
}

/** The day `days` before today in the city, as YYYY-MM-DD. */
export function cityDay(days = 0) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(new Date());
  const moment = new Date(`${today}T00:00:00Z`);
  moment.setUTCDate(moment.getUTCDate() - days);
  return moment.toISOString().slice(0, 10);
}

/** GET an API path with the operator's key: { ok, status, data, detail }. */
export async function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value != null) query.append(name, value);
  const response = await fetch(`${path}?${query}`, { headers: { "X-API-Key": localStorage.getItem(KEY_STORE) || "" } });
  const data = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data, detail: data?.detail || response.statusText };
}

// --- charts --------------------------------------------------------------------------------------------

/** A uPlot plugin shading the standard's bands (value ranges) behind the series. */
function bandsPlugin(bands) {
  return {
    hooks: {
      drawClear: (u) => {
        const { ctx, bbox } = u;
        ctx.save();
        ctx.beginPath();
        ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
        ctx.clip();
        for (const band of bands) {
          const bottom = u.valToPos(band.lower, "y", true);
          const top = band.upper == null ? bbox.top : u.valToPos(band.upper, "y", true);
          ctx.fillStyle = `${band.colour}38`;
          ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
        }
        ctx.restore();
      },
    },
  };
}

/** The y range: from 0 to the top of the band holding the highest value (so its band shows whole). */
function yRange(bands) {
  return (u, min, max) => {
    const top = Math.max(max ?? 0, 1);
    const band = bands.find((b) => b.upper != null && b.upper >= top);
    return [Math.min(0, min ?? 0), band ? band.upper : top * 1.1];
  };
}

const AXIS = { stroke: "#93a4b8", grid: { stroke: "#2b3a4c", width: 1 }, ticks: { stroke: "#2b3a4c" } };

/** Time ticks in the city's clock and the page's language: hours over a short span, days over a long one. */
function timeTicks(u, splits) {
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  const format = new Intl.DateTimeFormat(
    locale(),
    span <= 2 * 86400 ? { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false } : { timeZone: TZ, day: "2-digit", month: "2-digit" },
  );
  return splits.map((ts) => format.format(new Date(ts * 1e3)));
}

/** A line chart of (epoch seconds, value) points over `bands`, times shown in the city's zone. */
export function lineChart(target, { times, values, label, unit, bands = [], width = 520, height = 220, colour = "#4aa3ff" }) {
  return new uPlot(
    {
      width,
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), TZ),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: yRange(bands) } },
      axes: [{ ...AXIS, values: timeTicks }, { ...AXIS, label: unit, size: 52 }],
      series: [{}, { label, stroke: colour, width: 2, spanGaps: false, points: { show: false } }],
      plugins: [bandsPlugin(bands)],
    },
    [times, values],
    target,
  );
}

/** A sparkline: a small line without axes, for a tile. */
export function sparkline(target, { times, values, colour = "#4aa3ff", width = 150, height = 34 }) {
  return new uPlot(
    {
      width,
      height,
      legend: { show: false },
      cursor: { show: false },
      padding: [3, 2, 3, 2],
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: colour, width: 1.5, spanGaps: true, points: { show: true, size: 3, fill: colour } }],
    },
    [times, values],
    target,
  );
}

export function bandLegend(bands) {
  return el(
    "div",
    { class: "band-legend" },
    ...bands.map((band) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = band.colour;
      const range = band.upper == null ? `≥ ${number(band.lower, 1)}` : `${number(band.lower, 1)}–${number(band.upper, 1)}`;
      return el("span", {}, swatch, `${band.label[lang()]} ${range}`);
    }),
  );
}

// --- a sensor's chart ------------------------------------------------------------------------------------

const view = { sensors: new Map(), sensor: null, histories: {}, kpis: null, kpiError: null };

function historyPanel() {
  let panel = document.querySelector("#history-panel");
  if (!panel) {
    panel = el("section", { id: "history-panel", class: "panel history-panel", "data-testid": "history-panel", hidden: true });
    // Right under the map and the alerts, where the operator clicked.
    document.querySelector("#console").insertBefore(panel, document.querySelector(".feed-panel")?.nextSibling ?? null);
  }
  return panel;
}

async function openSensor(sensorId) {
  const sensor = view.sensors.get(sensorId) || { id: sensorId, feed: null, name: sensorId };
  view.sensor = sensor;
  view.histories = {};
  renderSensor();
  const measure = MEASURE[sensor.feed];
  if (!measure) return;
  const to = new Date();
  await Promise.all(
    SPANS.map(async (span) => {
      const from = new Date(to.getTime() - span.hours * 3600e3);
      try {
        const result = await get("/v1/history", {
          sensor: sensor.id,
          measure,
          window: WINDOWS[sensor.feed][span.window],
          from: from.toISOString(),
          to: to.toISOString(),
        });
        view.histories[span.key] = result.ok ? result.data : { error: result.detail };
      } catch (failure) {
        view.histories[span.key] = { error: failure.message };
      }
    }),
  );
  if (view.sensor === sensor) renderSensor();
}

function renderSensor() {
  const panel = historyPanel();
  const sensor = view.sensor;
  if (!sensor) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  panel.dataset.sensor = sensor.id;
  const close = el("button", { type: "button", class: "link", "data-testid": "history-close", text: tr("close") });
  close.addEventListener("click", () => {
    view.sensor = null;
    renderSensor();
  });
  const measure = MEASURE[sensor.feed];
  const title = [sensor.name, sensor.districtName, measure && tr("measure")[measure]].filter(Boolean).join(" · ");
  const head = el("div", { class: "panel-head" }, el("h2", { text: title }), close);
  if (!measure) {
    panel.replaceChildren(head, el("p", { class: "empty", text: tr("noMeasure") }));
    return;
  }
  const charts = el("div", { class: "history-charts" });
  let bands = [];
  for (const span of SPANS) {
    const history = view.histories[span.key];
    const box = el("figure", { class: "history-chart", "data-testid": `chart-${span.key}` }, el("figcaption", { text: tr(span.key) }));
    charts.append(box);
    if (!history) continue;
    if (history.error) {
      box.append(el("p", { class: "error", text: tr("historyError")(history.error) }));
      continue;
    }
    bands = history.bands || [];
    box.dataset.points = String(history.points.length);
    if (!history.points.length) {
      box.append(el("p", { class: "empty", text: tr("noHistory") }));
      continue;
    }
    const plot = el("div", { class: "plot" });
    box.append(plot);
    lineChart(plot, {
      times: history.points.map((p) => Date.parse(p.start) / 1e3),
      values: history.points.map((p) => p.mean),
      label: tr("measure")[measure],
      unit: history.unit,
      bands,
    });
  }
  const standard = Object.values(view.histories).find((h) => h?.standard)?.standard;
  panel.replaceChildren(head, charts, bands.length ? bandLegend(bands) : "", standard ? el("p", { class: "help", text: standard }) : "");
}

// --- KPI tiles per area ------------------------------------------------------------------------------------

function kpiPanel() {
  let panel = document.querySelector("#area-kpis");
  if (!panel) {
    panel = el("section", { id: "area-kpis", class: "panel area-kpis", "data-testid": "area-kpis" });
    document.querySelector("#console").append(panel);
  }
  return panel;
}

const kpisOpen = () => localStorage.getItem(KPI_OPEN_STORE) === "open";

async function loadKpis() {
  if (!localStorage.getItem(KEY_STORE) || !kpisOpen()) return;
  try {
    const result = await get("/v1/kpis", { from: cityDay(KPI_DAYS - 1), to: cityDay(0) });
    view.kpis = result.ok ? result.data : null;
    view.kpiError = result.ok ? null : result.detail;
  } catch (failure) {
    view.kpiError = failure.message;
  }
  renderKpis();
}

/** Per area and day: the worst station's daily VN_AQI, boardings, and the worst feed's completeness. */
export function areaSeries(kpis, area, days) {
  const aqi = days.map((day) => {
    const values = kpis.airDays.filter((d) => d.area === area && d.day === day && d.dailyAqi != null).map((d) => d.dailyAqi);
    return values.length ? Math.max(...values) : null;
  });
  const transit = kpis.transit.scopes.find((s) => s.kind === "area" && s.scope === area);
  const boardings = days.map((day) => (transit ? transit.dailyBoardings[day] ?? 0 : null));
  const feeds = kpis.dataCompleteness.filter((c) => c.scope === area);
  const completeness = days.map((day) => {
    const shares = feeds.map((c) => c.daily[day]).filter((v) => v != null);
    return shares.length ? Math.min(...shares) : null;
  });
  return { aqi, boardings, completeness };
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] != null) return values[i];
  return null;
}

function renderKpis() {
  const panel = kpiPanel();
  const link = el("a", { href: "/console/kpis.html", class: "link", "data-testid": "kpi-month-link", text: tr("monthPage") });
  const toggle = el("button", { type: "button", class: "link", "data-testid": "area-kpis-toggle", text: tr(kpisOpen() ? "hide" : "show") });
  toggle.addEventListener("click", () => {
    localStorage.setItem(KPI_OPEN_STORE, kpisOpen() ? "closed" : "open");
    renderKpis();
    if (kpisOpen()) loadKpis();
  });
  const head = el("div", { class: "panel-head" }, el("h2", { text: tr("areaKpis") }), el("span", { class: "kpi-links" }, link, " ", toggle));
  panel.dataset.open = String(kpisOpen());
  if (!kpisOpen()) {
    panel.replaceChildren(head);
    return;
  }
  if (view.kpiError) {
    panel.replaceChildren(head, el("p", { class: "error", text: tr("kpiError")(view.kpiError) }));
    return;
  }
  if (!view.kpis) {
    panel.replaceChildren(head);
    return;
  }
  const days = Array.from({ length: KPI_DAYS }, (_, n) => cityDay(KPI_DAYS - 1 - n));
  const times = days.map((_, n) => n);
  const names = new Map([...view.sensors.values()].map((s) => [s.district, s.districtName]));
  const areas = [...names.keys()].filter((a) => a && a !== "unregistered").sort((a, b) => names.get(a).localeCompare(names.get(b), "vi"));
  const grid = el("div", { class: "area-tiles" });
  panel.replaceChildren(head, grid); // in the page first: a sparkline takes its tile's width
  for (const area of areas) {
    const series = areaSeries(view.kpis, area, days);
    const rows = [
      ["aqi", series.aqi, (v) => number(v), "#f5a524"],
      ["boardings", series.boardings, (v) => number(v), "#4aa3ff"],
      ["completeness", series.completeness, percent, "#30a46c"],
    ];
    const tile = el("article", { class: "area-tile", "data-area": area }, el("h3", { text: names.get(area) }));
    grid.append(tile);
    for (const [key, values, format, colour] of rows) {
      const spark = el("div", { class: "spark" });
      tile.append(
        el(
          "div",
          { class: "area-kpi", "data-kpi": key },
          el("span", { class: "area-kpi-name", text: tr(key) }),
          el("span", { class: "area-kpi-value", text: format(lastValue(values)) }),
          spark,
        ),
      );
      if (values.some((v) => v != null)) sparkline(spark, { times, values, colour, width: spark.clientWidth || 150 });
    }
  }
}

// --- wiring ----------------------------------------------------------------------------------------------

async function loadSensors() {
  const result = await get("/v1/sensors").catch(() => null);
  if (result?.ok) view.sensors = new Map(result.data.items.map((s) => [s.id, s]));
}

async function begin() {
  await loadSensors();
  renderKpis();
  await loadKpis();
}

function boot() {
  const main = document.querySelector("#console");
  if (!main) return;
  document.querySelector("#map")?.addEventListener("click", (event) => {
    const shape = event.target.closest?.("[data-sensor]");
    if (shape) openSensor(shape.dataset.sensor);
  });
  let started = false;
  const startWhenShown = () => {
    if (!main.hidden && !started && localStorage.getItem(KEY_STORE)) {
      started = true;
      begin();
    }
  };
  new MutationObserver(startWhenShown).observe(main, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(() => {
    renderSensor();
    if (document.querySelector("#area-kpis")) renderKpis();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  setInterval(() => started && loadKpis(), KPI_EVERY_MS);
  startWhenShown();
}

if (document.querySelector("#console")) boot();
