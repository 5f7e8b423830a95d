// The operators' console: the city picture (GET /v1/picture, /v1/sensors), the live alerts (GET /v1/stream,
// Server-Sent Events read with fetch) and the operators' actions (POST /v1/alerts/{id}/ack|resolve). Plain modules, no build.

const TZ = "Asia/Ho_Chi_Minh"; // the city's time zone: every time shown is local to Hanoi
// The feeds as the registry describes them (GET /console/feeds.json, in canonical order): names, indices,
// bands, markers. Filled at boot, before anything is drawn; the console names no feed itself.
let FEEDS = [];
const VIEW = {}; // feed → its view
const INDEX_OF = {}; // feed → the key of its index in a sensor's indices
const MARKERS = { circle: "●", diamond: "◆", square: "■", triangle: "▲", hexagon: "⬢" };
const SEVERITIES = ["critical", "warning", "info"];
const SEVERITY_RANK = { info: 1, warning: 2, critical: 3 };
const SEVERITY_COLOUR = { critical: "#e5484d", warning: "#f5a524", info: "#3b82f6" };
const STATUS_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const UNKNOWN_COLOUR = "#6b7785";
const PICTURE_EVERY_MS = 10_000;
const PICTURE_THROTTLE_MS = 3_000; // at most one picture refresh this often on aggregate events
const SENSORS_EVERY_MS = 60_000;
const RESOLVED_LINGER_MS = 120_000; // a row resolved while watching stays (dimmed) this long
const STALE_S = 300;
const DEAD_S = 900;
const KEY_STORE = "ioc.console.key";
const LANG_STORE = "ioc.console.lang";

const I18N = {
  vi: {
    title: "IOC · Trung tâm điều hành",
    subtitle: "Trung tâm điều hành thông minh",
    changeKey: "Đổi khoá",
    mapTitle: "Bản đồ quận và cảm biến",
    feedTitle: "Cảnh báo trực tiếp",
    hideResolved: "Ẩn đã xử lý",
    allSeverities: "Mọi mức độ",
    allFeeds: "Mọi nguồn dữ liệu",
    allAreas: "Mọi quận",
    filterSeverity: "Lọc theo mức độ",
    filterFeed: "Lọc theo nguồn dữ liệu",
    filterDistrict: "Lọc theo quận",
    noAlerts: "Không có cảnh báo nào đang mở.",
    keyTitle: "Khoá API của điều hành viên",
    keyHelp: "Nhập khoá có vai trò operator. Khoá được lưu trong trình duyệt này.",
    keyPlaceholder: "Khoá API",
    keySubmit: "Vào bảng điều hành",
    keyChecking: "Đang kiểm tra khoá…",
    conn: { idle: "—", connecting: "Đang kết nối…", live: "Trực tiếp", reconnecting: "Đang kết nối lại…", offline: "Mất kết nối" },
    noIndex: "chưa có chỉ số",
    openAlerts: (n) => `${n} cảnh báo mở`,
    freshness: (age) => `dữ liệu ${age} trước`,
    noData: "chưa có dữ liệu",
    reporting: (a, b) => (b == null ? `${a} cảm biến báo` : `${a}/${b} cảm biến báo`),
    unregisteredCount: (a, b) => `${a}/${b} chưa đăng ký`,
    unregisteredTitle: "Cảm biến chưa đăng ký",
    unregisteredHelp: "Ngoài danh mục của thành phố: không có vị trí, không tính vào số cảm biến báo.",
    unregisteredNone: "Không có.",
    windowsOf: "Các cửa sổ gần nhất",
    severity: { critical: "Nghiêm trọng", warning: "Cảnh báo", info: "Thông tin" },
    status: { open: "Mở", acknowledged: "Đã xác nhận", resolved: "Đã xử lý" },
    ack: "Xác nhận",
    resolve: "Xử lý xong",
    notePlaceholder: "Ghi chú (không bắt buộc)",
    started: "Bắt đầu",
    by: "bởi",
    value: "Giá trị",
    threshold: "ngưỡng",
    baseline: "bình thường",
    suppressed: "Đã tắt thông báo",
    sending: "Đang gửi…",
    done: { ack: "Đã xác nhận.", resolve: "Đã xử lý xong." },
    pending: "Đã nhận lệnh; hệ thống sẽ áp dụng trong giây lát.",
    sendFailed: (e) => `Không gửi được: ${e}`,
    incidents: (n) => `${n} sự cố đang mở`,
    pictureError: (e) => `Không tải được bức tranh thành phố: ${e}`,
    district: "Quận",
    legendAlerts: "có cảnh báo mở",
    legendUnknown: "chưa có chỉ số",
    ago: { s: "giây", m: "phút", h: "giờ", d: "ngày" },
    mapEmpty: "Chưa có dữ liệu vị trí.",
    degraded: "Thiết bị có thể lỗi (im lặng, kẹt giá trị hoặc đột biến)",
    layerToggle: (name) => `Hiện/ẩn lớp ${name} trên bản đồ`,
  },
  en: {
    title: "IOC · Operations Centre",
    subtitle: "Intelligent Operations Centre",
    changeKey: "Change key",
    mapTitle: "Districts and sensors",
    feedTitle: "Live alerts",
    hideResolved: "Hide resolved",
    allSeverities: "All severities",
    allFeeds: "All feeds",
    allAreas: "All districts",
    filterSeverity: "Filter by severity",
    filterFeed: "Filter by feed",
    filterDistrict: "Filter by district",
    noAlerts: "No open alerts.",
    keyTitle: "Operator API key",
    keyHelp: "Enter a key with the operator role. It is kept in this browser.",
    keyPlaceholder: "API key",
    keySubmit: "Open the console",
    keyChecking: "Checking the key…",
    conn: { idle: "—", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" },
    noIndex: "no index yet",
    openAlerts: (n) => `${n} open alert${n === 1 ? "" : "s"}`,
    freshness: (age) => `data ${age} old`,
    noData: "no data yet",
    reporting: (a, b) => (b == null ? `${a} sensors reporting` : `${a}/${b} sensors reporting`),
    unregisteredCount: (a, b) => `${a}/${b} unregistered`,
    unregisteredTitle: "Unregistered sensors",
    unregisteredHelp: "Outside the city registry: no location, not counted among the sensors reporting.",
    unregisteredNone: "None.",
    windowsOf: "Newest windows",
    severity: { critical: "Critical", warning: "Warning", info: "Info" },
    status: { open: "Open", acknowledged: "Acknowledged", resolved: "Resolved" },
    ack: "Acknowledge",
    resolve: "Resolve",
    notePlaceholder: "Note (optional)",
    started: "Started",
    by: "by",
    value: "Value",
    threshold: "threshold",
    baseline: "baseline",
    suppressed: "Suppressed",
    sending: "Sending…",
    done: { ack: "Acknowledged.", resolve: "Resolved." },
    pending: "Accepted; the system will apply it in a moment.",
    sendFailed: (e) => `Could not send: ${e}`,
    incidents: (n) => `${n} open incident${n === 1 ? "" : "s"}`,
    pictureError: (e) => `Could not load the city picture: ${e}`,
    district: "District",
    legendAlerts: "open alerts",
    legendUnknown: "no index",
    ago: { s: "s", m: "min", h: "h", d: "d" },
    mapEmpty: "No positions yet.",
    degraded: "Device may be faulty (silent, stuck or spiking)",
    layerToggle: (name) => `Show or hide the ${name} layer on the map`,
  },
};

const state = {
  lang: localStorage.getItem(LANG_STORE) === "en" ? "en" : "vi",
  key: null,
  picture: null,
  pictureAt: 0,
  pictureBusy: false,
  pictureTimer: null,
  lastPictureRequest: 0,
  registry: null, // GET /v1/sensors items, when the API has it
  sensorsEndpoint: true,
  alerts: new Map(), // id → {alert, revision, resolvedSeen}
  incidents: new Map(), // id → {incident, revision}
  rows: new Map(), // id → <li>
  outcomes: new Map(), // id → {kind, text | key}
  fresh: new Set(), // ids opened while watching: highlighted once
  stream: null, // the AbortController of the open GET /v1/stream
  lastEventId: null,
  connection: "idle",
  everLive: false,
  timers: [],
  reopenTimer: null,
  hiddenLayers: new Set(), // feeds whose map layer the operator hid
};

const $ = (selector) => document.querySelector(selector);
const t = (key) => I18N[state.lang][key];
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style") node.style.cssText = value; // through the CSSOM: the CSP forbids style attributes
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function svgTitle(text) {
  return svg("title", {}, text);
}

// A feed's name in the page's language (its own name when the registry does not know it).
function feedName(feed) {
  return VIEW[feed] ? bilingual(VIEW[feed].label) : feed;
}

async function loadFeeds() {
  const response = await fetch("/console/feeds.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`GET /console/feeds.json: ${response.status}`);
  const { feeds } = await response.json();
  FEEDS = feeds.map((f) => f.name);
  for (const f of feeds) {
    VIEW[f.name] = f;
    INDEX_OF[f.name] = f.index.name;
  }
}

// --- formatting ----------------------------------------------------------------------------------------

function locale() {
  return state.lang === "vi" ? "vi-VN" : "en-GB";
}

function localTime(iso, withDate = true) {
  if (!iso) return "—";
  const options = { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false };
  if (withDate) Object.assign(options, { day: "2-digit", month: "2-digit" });
  return new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
}

function age(seconds) {
  const units = t("ago");
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} ${units.s}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${units.m}`;
  if (s < 86400) return `${Math.floor(s / 3600)} ${units.h}`;
  return `${Math.floor(s / 86400)} ${units.d}`;
}

function number(value, digits = 0) {
  if (value == null || Number.isNaN(Number(value))) return "—";
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}

function textOn(hex) {
  const match = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!match) return "#fff";
  const n = parseInt(match[1], 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
}

function bilingual(text) {
  if (text == null) return "";
  if (typeof text === "string") return text;
  return text[state.lang] ?? text.vi ?? text.en ?? "";
}

// --- the API -------------------------------------------------------------------------------------------

async function api(path, { method = "GET", body, key = state.key } = {}) {
  const headers = { "X-API-Key": key, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const raw = await response.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = raw;
  }
  return { status: response.status, ok: response.ok, data };
}

function detailOf(result) {
  const detail = result.data && typeof result.data === "object" ? result.data.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
  if (typeof result.data === "string" && result.data) return result.data.slice(0, 200);
  return `HTTP ${result.status}`;
}

const isAuthError = (result) => result.status === 401 || result.status === 403;

// --- key -----------------------------------------------------------------------------------------------

function showKeyForm(message) {
  $("#key-overlay").hidden = false;
  $("#console").hidden = true;
  $("#change-key").hidden = true;
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#key-input").focus();
}

async function submitKey(event) {
  event.preventDefault();
  const key = $("#key-input").value.trim();
  if (!key) return;
  const button = $("#key-submit");
  button.disabled = true;
  const error = $("#key-error");
  error.hidden = false;
  error.textContent = t("keyChecking");
  try {
    const result = await api("/v1/picture", { key });
    if (!result.ok) {
      error.textContent = detailOf(result);
      return;
    }
    localStorage.setItem(KEY_STORE, key);
    $("#key-input").value = "";
    start(key, result.data);
  } catch (failure) {
    error.textContent = t("sendFailed")(failure.message);
  } finally {
    button.disabled = false;
  }
}

function authFailed(detail) {
  stop();
  localStorage.removeItem(KEY_STORE);
  showKeyForm(detail);
}

function start(key, picture) {
  stop();
  state.key = key;
  $("#key-overlay").hidden = true;
  $("#console").hidden = false;
  $("#change-key").hidden = false;
  if (picture) takePicture(picture);
  else refreshPicture();
  loadSensors();
  openStream();
  state.timers.push(setInterval(refreshPicture, PICTURE_EVERY_MS));
  state.timers.push(setInterval(loadSensors, SENSORS_EVERY_MS));
}

function stop() {
  closeStream();
  clearTimeout(state.reopenTimer);
  clearTimeout(state.pictureTimer);
  state.pictureTimer = null;
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.key = null;
  setConnection("idle");
}

// --- the live stream -----------------------------------------------------------------------------------

// Read with fetch, not EventSource: an EventSource cannot send the X-API-Key header, and a key in the URL
// would end up in access logs. Resuming is ours to do: Last-Event-ID goes with every new request.
const STREAM_HANDLERS = {
  snapshot: applySnapshot,
  reset: applySnapshot,
  alert: applyAlertEvent,
  incident: applyIncidentEvent,
  aggregate: () => pictureSoon(),
};

function closeStream() {
  if (state.stream) {
    state.stream.abort();
    state.stream = null;
  }
}

function openStream() {
  closeStream();
  clearTimeout(state.reopenTimer);
  const controller = new AbortController();
  state.stream = controller;
  setConnection(state.everLive ? "reconnecting" : "connecting");
  // However it ends (the server stopped, the network, an answer other than 200): find out why, try again.
  const ended = () => controller === state.stream && reopenLater();
  readStream(controller.signal).then(ended, ended);
}

async function readStream(signal) {
  const headers = { "X-API-Key": state.key, Accept: "text/event-stream" };
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  const response = await fetch("/v1/stream", { headers, signal, cache: "no-store" });
  if (!response.ok || !response.body) throw new Error(`GET /v1/stream: ${response.status}`);
  state.everLive = true;
  setConnection("live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    const blocks = buffer.split("\n\n");
    buffer = blocks.pop(); // an event is complete at its blank line; the rest waits for more
    for (const block of blocks) applyStreamEvent(parseEvent(block));
  }
}

// One Server-Sent Event from its lines (https://html.spec.whatwg.org/multipage/server-sent-events.html).
function parseEvent(block) {
  const event = { id: null, type: "message", data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // a comment: the keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") event.data.push(value);
    else if (field === "event") event.type = value;
    else if (field === "id") event.id = value;
  }
  return event;
}

function applyStreamEvent(event) {
  if (event.id) state.lastEventId = event.id;
  const apply = STREAM_HANDLERS[event.type];
  if (!apply || !event.data.length) return;
  let data;
  try {
    data = JSON.parse(event.data.join("\n"));
  } catch {
    return;
  }
  apply(data);
}

async function reopenLater() {
  closeStream();
  setConnection("reconnecting");
  try {
    const check = await api("/v1/picture");
    if (isAuthError(check)) return authFailed(detailOf(check));
  } catch {
    setConnection("offline");
  }
  if (state.key) state.reopenTimer = setTimeout(openStream, 3000);
}

function setConnection(connection) {
  state.connection = connection;
  const badge = $("#connection");
  badge.dataset.state = connection;
  $("#connection-text").textContent = t("conn")[connection];
}

function applySnapshot(snapshot) {
  const previous = state.alerts;
  state.alerts = new Map();
  for (const alert of snapshot.alerts || []) {
    // A snapshot has no revisions: a change that repeats one of its states re-applies it, harmlessly.
    state.alerts.set(alert.id, { alert, revision: 0, resolvedSeen: previous.get(alert.id)?.resolvedSeen });
  }
  state.incidents = new Map((snapshot.incidents || []).map((i) => [i.id, { incident: i, revision: 0 }]));
  renderAlerts();
  renderIncidents();
  renderTiles();
  renderMap();
}

function applyAlertEvent(event) {
  const alert = event.alert;
  if (!alert?.id) return;
  const shown = state.alerts.get(alert.id);
  if (shown && shown.revision >= event.revision) return;
  if (!shown && event.change === "opened") state.fresh.add(alert.id);
  upsertAlert(alert, event.revision);
}

function upsertAlert(alert, revision) {
  const shown = state.alerts.get(alert.id);
  const resolvedSeen =
    alert.status === "resolved" ? shown?.resolvedSeen ?? (shown ? Date.now() : 0) : undefined;
  state.alerts.set(alert.id, { alert, revision, resolvedSeen });
  renderAlerts();
  renderTiles();
  renderMap();
}

function applyIncidentEvent(event) {
  const incident = event.incident;
  if (!incident?.id) return;
  const shown = state.incidents.get(incident.id);
  if (shown && shown.revision >= event.revision) return;
  if (event.change === "merged" || event.change === "dissolved") state.incidents.delete(incident.id);
  else state.incidents.set(incident.id, { incident, revision: event.revision });
  renderIncidents();
}

function renderIncidents() {
  const open = [...state.incidents.values()].filter((i) => i.incident.status === "open").length;
  const pill = $("#incidents");
  pill.hidden = open === 0;
  pill.textContent = t("incidents")(open);
}

// --- the picture ---------------------------------------------------------------------------------------

async function refreshPicture() {
  if (!state.key || state.pictureBusy) return;
  state.pictureBusy = true;
  state.lastPictureRequest = Date.now();
  try {
    const result = await api("/v1/picture");
    if (isAuthError(result)) return authFailed(detailOf(result));
    if (!result.ok) return banner(t("pictureError")(detailOf(result)));
    takePicture(result.data);
  } catch (failure) {
    banner(t("pictureError")(failure.message));
  } finally {
    state.pictureBusy = false;
  }
}

function pictureSoon() {
  if (state.pictureTimer) return;
  const wait = Math.max(0, state.lastPictureRequest + PICTURE_THROTTLE_MS - Date.now());
  state.pictureTimer = setTimeout(() => {
    state.pictureTimer = null;
    refreshPicture();
  }, wait);
}

function takePicture(picture) {
  state.picture = picture;
  state.pictureAt = Date.now();
  banner(null);
  if (picture?.city) $("#city-name").textContent = picture.city;
  renderTiles();
  renderMap();
  renderUnregistered();
}

async function loadSensors() {
  if (!state.key || !state.sensorsEndpoint) return;
  try {
    const result = await api("/v1/sensors");
    if (result.status === 404) {
      state.sensorsEndpoint = false; // an API without the registry endpoint: the picture's sensors only
      return;
    }
    if (isAuthError(result)) return authFailed(detailOf(result));
    if (result.ok && Array.isArray(result.data?.items)) {
      state.registry = result.data.items;
      renderMap();
    }
  } catch {
    // the next round tries again; the picture's sensors are drawn meanwhile
  }
}

function banner(message) {
  const node = $("#banner");
  node.hidden = !message;
  node.textContent = message || "";
}

// --- KPI tiles -----------------------------------------------------------------------------------------

function unresolvedAlerts() {
  return [...state.alerts.values()].map((v) => v.alert).filter((a) => a.status !== "resolved");
}

// The feed's headline over its sensors, as its index says: the worst band, then the worst value within it
// ("high": a higher value is worse, "low": a lower one), or the sum of a count without bands.
function worstIndex(feed, sensors) {
  const index = VIEW[feed]?.index;
  const key = INDEX_OF[feed];
  const rated = sensors.filter((s) => s.indices?.[key]?.value != null).map((s) => ({ sensor: s, index: s.indices[key] }));
  if (!rated.length || !index) return null;
  if (index.worst === "sum") {
    const total = rated.reduce((sum, r) => sum + Number(r.index.value), 0);
    return { index: { value: total, band: null, colour: null }, sensor: null };
  }
  const rank = (r) => index.bands.findIndex((b) => b.key === r.index.band);
  const sign = index.worst === "high" ? 1 : -1;
  return rated.sort((a, b) => rank(b) - rank(a) || sign * (b.index.value - a.index.value))[0];
}

// The feed's tally (crowd: people in every zone now): its field's newest value summed over the sensors.
function tallyOf(feed, sensors) {
  const tally = VIEW[feed]?.tally;
  if (!tally) return null;
  const counted = sensors.filter((s) => isRegistered(s) && s.values?.[tally.field]?.last != null);
  const total = counted.reduce((sum, s) => sum + Number(s.values[tally.field].last), 0);
  return { sensors: counted.length, total, tally };
}

function freshnessOf(feed, sensors) {
  const given = state.picture?.freshness?.[feed];
  const sinceFetch = (Date.now() - state.pictureAt) / 1000;
  if (given) {
    return {
      age: given.ageSeconds == null ? null : given.ageSeconds + sinceFetch,
      reporting: given.sensorsReporting ?? sensors.filter(isRegistered).length,
      registered: given.sensorsRegistered,
      unregisteredReporting: given.unregisteredReporting ?? 0,
      unregistered: given.unregisteredInPicture ?? sensors.filter((s) => !isRegistered(s)).length,
    };
  }
  const newest = Math.max(...sensors.map((s) => Date.parse(s.lastEventTime)).filter(Number.isFinite), -Infinity);
  return {
    age: Number.isFinite(newest) ? (Date.now() - newest) / 1000 : null,
    reporting: sensors.filter(isRegistered).length,
    registered: null,
    unregisteredReporting: 0,
    unregistered: sensors.filter((s) => !isRegistered(s)).length,
  };
}

function renderTiles() {
  const container = $("#tiles");
  const openByFeed = {};
  for (const alert of unresolvedAlerts()) openByFeed[alert.feed] = (openByFeed[alert.feed] || 0) + 1;
  for (const feed of FEEDS) {
    let tile = container.querySelector(`[data-feed="${feed}"]`);
    if (!tile) {
      tile = el(
        "article",
        { class: "tile", "data-feed": feed, "data-testid": `tile-${feed}` },
        el("div", { class: "tile-head" }, el("span", { class: "tile-name" }), el("span", { class: "tile-metric" })),
        el(
          "div",
          { class: "tile-value" },
          el("span", { class: "tile-number" }),
          el("span", { class: "band" }),
          el("span", { class: "tile-unit" }),
        ),
        el("div", { class: "tile-where" }),
        el("div", { class: "tile-tally", hidden: "" }),
        el("div", { class: "tile-foot" }, el("span", { class: "tile-alerts" }), el("span", { class: "fresh" })),
      );
      container.append(tile);
    }
    const sensors = state.picture?.feeds?.[feed]?.sensors || [];
    const worst = worstIndex(feed, sensors);
    const index = worst?.index;
    const colour = index?.colour || null;
    tile.style.setProperty("--tile-colour", colour || UNKNOWN_COLOUR);
    const view = VIEW[feed];
    tile.querySelector(".tile-name").textContent = feedName(feed);
    tile.querySelector(".tile-metric").textContent = bilingual(view.metric);
    const numberNode = tile.querySelector(".tile-number");
    const band = tile.querySelector(".band");
    const unit = tile.querySelector(".tile-unit");
    const indexUnit = bilingual(view.index.unit);
    if (!index) {
      numberNode.textContent = "—";
      band.hidden = true;
      unit.textContent = t("noIndex");
    } else if (view.headline === "band") {
      numberNode.textContent = index.band || "—";
      unit.textContent = `${number(index.value)}${indexUnit}`;
      band.hidden = !index.label;
    } else {
      numberNode.textContent = number(index.value);
      unit.textContent = indexUnit.trim();
      band.hidden = !index.label;
    }
    if (index) band.dataset.band = index.band || "";
    const tallied = tallyOf(feed, sensors);
    const tallyNode = tile.querySelector(".tile-tally");
    tallyNode.hidden = !tallied;
    if (tallied) {
      tallyNode.dataset.total = String(tallied.total);
      tallyNode.textContent =
        `${bilingual(tallied.tally.sensors)}: ${number(tallied.sensors)} · ${number(tallied.total)} ${bilingual(tallied.tally.unit)}`;
    }
    if (index?.label) {
      band.textContent = bilingual(index.label);
      band.style.background = colour || UNKNOWN_COLOUR;
      band.style.color = textOn(colour);
    }
    const where = worst?.sensor;
    tile.querySelector(".tile-where").textContent = where ? `${where.name} · ${where.districtName}` : "";
    const open = openByFeed[feed] || 0;
    const alerts = tile.querySelector(".tile-alerts");
    alerts.dataset.count = String(open);
    alerts.textContent = t("openAlerts")(open);
    renderFreshness(tile, feed, sensors);
  }
}

function renderFreshness(tile, feed, sensors) {
  const fresh = freshnessOf(feed, sensors);
  const node = tile.querySelector(".fresh");
  if (fresh.age == null) {
    node.textContent = t("noData");
    node.dataset.age = "none";
  } else {
    const parts = [t("freshness")(age(fresh.age)), t("reporting")(fresh.reporting, fresh.registered)];
    if (fresh.unregistered) parts.push(t("unregisteredCount")(fresh.unregisteredReporting, fresh.unregistered));
    node.textContent = parts.join(" · ");
    node.dataset.age = fresh.age > DEAD_S ? "dead" : fresh.age > STALE_S ? "stale" : "ok";
  }
  node.dataset.reporting = String(fresh.reporting);
  node.dataset.unregistered = String(fresh.unregistered);
}

// An `unregistered:` sensor: not in the city registry, so no district and no location (never on the map).
function isRegistered(sensor) {
  return sensor.registered !== false && !String(sensor.sensorId ?? sensor.id ?? "").startsWith("unregistered:");
}

// --- unregistered sensors: a list of their own, each opening its page (GET /v1/sensors/{id}) -------------

function unregisteredSensors() {
  const found = [];
  for (const feed of FEEDS) {
    for (const s of state.picture?.feeds?.[feed]?.sensors || []) if (!isRegistered(s)) found.push({ ...s, feed });
  }
  return found.sort((a, b) => a.sensorId.localeCompare(b.sensorId));
}

function renderUnregistered() {
  const list = $("#unregistered");
  if (!list) return;
  const sensors = unregisteredSensors();
  $("#unregistered-empty").hidden = sensors.length > 0;
  const keep = new Set(sensors.map((s) => s.sensorId));
  for (const row of [...list.children]) if (!keep.has(row.dataset.sensorId)) row.remove();
  for (const s of sensors) {
    let row = [...list.children].find((r) => r.dataset.sensorId === s.sensorId);
    if (!row) {
      row = el(
        "li",
        { class: "unregistered-row", "data-sensor-id": s.sensorId },
        el("button", { type: "button", class: "link sensor-open" }),
        el("span", { class: "sensor-meta" }),
        el("div", { class: "sensor-page", hidden: "" }),
      );
      row.querySelector(".sensor-open").addEventListener("click", () => openSensorPage(row));
      list.append(row);
    }
    row.dataset.feed = s.feed;
    row.querySelector(".sensor-open").textContent = s.sensorId;
    const [name, index] = Object.entries(s.indices || {})[0] || [];
    const value = index ? ` · ${name} ${number(index.value)}${index.label ? ` (${bilingual(index.label)})` : ""}` : "";
    row.querySelector(".sensor-meta").textContent = `${feedName(s.feed)} · ${localTime(s.lastEventTime)}${value}`;
  }
}

async function openSensorPage(row) {
  const page = row.querySelector(".sensor-page");
  if (!page.hidden) {
    page.hidden = true;
    return;
  }
  const result = await api(`/v1/sensors/${encodeURIComponent(row.dataset.sensorId)}`);
  if (isAuthError(result)) return authFailed(detailOf(result));
  page.replaceChildren();
  if (!result.ok) {
    page.append(el("p", { class: "error" }, detailOf(result)));
  } else {
    const lines = (result.data.aggregates || []).map((w) => {
      const values = Object.entries(w.values || {})
        .map(([field, v]) => `${field} ${number(v.last, 1)}${v.unit ? ` ${v.unit}` : ""}`)
        .join(", ");
      return el("li", { "data-window": w.window }, `${w.window} · ${localTime(w.windowStart)} · ${values}`);
    });
    page.append(el("p", { class: "sensor-page-title" }, t("windowsOf")), el("ul", {}, ...lines));
  }
  page.hidden = false;
}

// --- map -----------------------------------------------------------------------------------------------

function mapSensors() {
  const byId = new Map();
  for (const s of state.registry || []) {
    byId.set(s.id, {
      id: s.id,
      feed: s.feed,
      name: s.name,
      lat: s.lat,
      lon: s.lon,
      district: s.district,
      districtName: s.districtName,
      indices: s.indices || {},
      lastEventTime: s.lastEventTime,
      health: s.health,
    });
  }
  for (const feed of FEEDS) {
    for (const s of state.picture?.feeds?.[feed]?.sensors || []) {
      const known = byId.get(s.sensorId) || {
        id: s.sensorId,
        feed,
        name: s.name,
        lat: s.lat,
        lon: s.lon,
        district: s.district,
        districtName: s.districtName,
        indices: {},
      };
      known.indices = { ...known.indices, ...(s.indices || {}) };
      known.lastEventTime = s.lastEventTime;
      byId.set(s.sensorId, known);
    }
  }
  // Only sensors with a location: never an `unregistered:` one, never a 0,0 stand-in.
  return [...byId.values()].filter(
    (s) => isRegistered(s) && Number.isFinite(s.lat) && Number.isFinite(s.lon) && (s.lat || s.lon),
  );
}

function mapDistricts(sensors) {
  if (state.picture?.districts?.length) return state.picture.districts;
  // Without the picture's districts: each district at the mean position of its sensors.
  const groups = new Map();
  for (const s of sensors) {
    if (!s.district || s.district === "unregistered") continue;
    const g = groups.get(s.district) || { id: s.district, name: s.districtName, lat: 0, lon: 0, n: 0, indices: {} };
    g.lat += s.lat;
    g.lon += s.lon;
    g.n += 1;
    groups.set(s.district, g);
  }
  return [...groups.values()].map((g) => ({ ...g, lat: g.lat / g.n, lon: g.lon / g.n }));
}

// One line of a sensor's or district's tooltip: the feed's index by its short name, its unit and band.
function indexLine(feed, index) {
  const view = VIEW[feed];
  if (!view || !index || index.value == null) return null;
  const label = index.label ? ` · ${bilingual(index.label)}` : index.band && view.headline === "band" ? ` · ${index.band}` : "";
  return `${bilingual(view.index.shortName)} ${number(index.value)}${bilingual(view.index.unit)}${label}`;
}

function sensorShape(feed, x, y, colour) {
  const common = { class: "sensor", fill: colour };
  const r = 5.5;
  const marker = VIEW[feed]?.marker;
  if (marker === "diamond") {
    return svg("polygon", { ...common, points: `${x},${y - r - 1} ${x + r + 1},${y} ${x},${y + r + 1} ${x - r - 1},${y}` });
  }
  if (marker === "square") return svg("rect", { ...common, x: x - r + 0.5, y: y - r + 0.5, width: 2 * r - 1, height: 2 * r - 1 });
  if (marker === "triangle") {
    return svg("polygon", { ...common, points: `${x},${y - r - 1} ${x + r + 0.5},${y + r - 0.5} ${x - r - 0.5},${y + r - 0.5}` });
  }
  if (marker === "hexagon") {
    const h = r + 2; // a zone, not a point: a larger marker
    const corners = [0, 1, 2, 3, 4, 5].map((i) => {
      const a = (Math.PI / 3) * i + Math.PI / 6;
      return `${(x + h * Math.cos(a)).toFixed(1)},${(y + h * Math.sin(a)).toFixed(1)}`;
    });
    return svg("polygon", { ...common, points: corners.join(" ") });
  }
  return svg("circle", { ...common, cx: x, cy: y, r });
}

function renderMap() {
  const map = $("#map");
  const width = 1000;
  const height = 720;
  map.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const sensors = mapSensors();
  const districts = mapDistricts(sensors);
  const points = [...districts, ...sensors];
  map.replaceChildren();
  if (!points.length) {
    map.append(svg("text", { class: "map-note", x: width / 2, y: height / 2, "text-anchor": "middle" }, t("mapEmpty")));
    renderLegend();
    return;
  }
  // Equirectangular projection fitted to the bounding box (fine at a city's scale).
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  const margin = 60;
  const spanX = Math.max((maxLon - minLon) * k, 1e-6);
  const spanY = Math.max(maxLat - minLat, 1e-6);
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
  const offsetX = (width - spanX * scale) / 2;
  const offsetY = (height - spanY * scale) / 2;
  const project = (lat, lon) => [
    +(offsetX + (lon - minLon) * k * scale).toFixed(1),
    +(offsetY + (maxLat - lat) * scale).toFixed(1),
  ];

  const alertsByDistrict = new Map();
  for (const alert of unresolvedAlerts()) {
    const counts = alertsByDistrict.get(alert.district) || { critical: 0, warning: 0, info: 0 };
    counts[alert.severity] = (counts[alert.severity] || 0) + 1;
    alertsByDistrict.set(alert.district, counts);
  }

  const discs = svg("g", { class: "districts" });
  // One layer per feed, which the legend shows or hides.
  const layers = new Map(
    FEEDS.map((f) => [f, svg("g", { class: "sensors layer", "data-layer": f, "data-testid": `layer-${f}` })]),
  );
  for (const [feed, layer] of layers) layer.style.display = state.hiddenLayers.has(feed) ? "none" : "";
  const labels = svg("g", { class: "labels" });
  for (const d of districts) {
    const [x, y] = project(d.lat, d.lon);
    const counts = alertsByDistrict.get(d.id) || d.openAlerts || {};
    const worst = SEVERITIES.find((s) => counts[s] > 0);
    const total = SEVERITIES.reduce((sum, s) => sum + (counts[s] || 0), 0);
    const aqi = d.indices?.vnAqi;
    const lines = [`${t("district")} ${d.name}`];
    for (const feed of FEEDS) {
      const line = indexLine(feed, d.indices?.[INDEX_OF[feed]]);
      if (line) lines.push(line);
    }
    if (total) lines.push(SEVERITIES.filter((s) => counts[s]).map((s) => `${counts[s]} ${t("severity")[s]}`).join(", "));
    const group = svg("g", { class: "district", "data-district": d.id }, svgTitle(lines.join("\n")));
    group.append(svg("circle", { class: "district-disc", cx: x, cy: y, r: 22 }));
    if (aqi?.colour) group.append(svg("circle", { cx: x, cy: y, r: 22, fill: aqi.colour, "fill-opacity": 0.28 }));
    if (worst) {
      group.append(
        svg("circle", { class: "district-ring", cx: x, cy: y, r: 28, stroke: SEVERITY_COLOUR[worst], "data-severity": worst }),
      );
      group.append(svg("text", { class: "district-count", x, y: y + 4, "text-anchor": "middle" }, String(total)));
    }
    discs.append(group);
    labels.append(svg("text", { class: "district-label", x, y: y - 32, "text-anchor": "middle" }, d.name));
  }
  for (const s of sensors) {
    const [x, y] = project(s.lat, s.lon);
    const layer = layers.get(s.feed);
    if (!layer) continue; // a feed the registry no longer has
    const index = s.indices?.[INDEX_OF[s.feed]];
    const colour = index?.colour || UNKNOWN_COLOUR;
    const lines = [`${s.name} (${feedName(s.feed)})`, s.districtName || ""];
    lines.push(indexLine(s.feed, index) || t("noIndex"));
    if (s.lastEventTime) lines.push(localTime(s.lastEventTime));
    if (s.health === "degraded") lines.push(t("degraded"));
    const shape = sensorShape(s.feed, x, y, colour);
    shape.dataset.sensor = s.id;
    if (s.health === "degraded") shape.classList.add("degraded");
    shape.append(svgTitle(lines.filter(Boolean).join("\n")));
    if (index) shape.dataset.band = index.band || "";
    layer.append(shape);
    const suffix = VIEW[s.feed].valueOnMap;
    if (suffix != null && index?.value != null) {
      layer.append(
        svg("text", { class: "sensor-value", x: x + 10, y: y + 4, "data-sensor": s.id }, `${number(index.value)}${suffix}`),
      );
    }
  }
  map.append(discs, ...layers.values(), labels);
  renderLegend();
}

function renderLegend() {
  const legend = $("#legend");
  legend.replaceChildren(
    ...FEEDS.map((f) => {
      const toggle = el("button", {
        type: "button",
        class: "layer-toggle",
        "data-layer": f,
        "aria-pressed": String(!state.hiddenLayers.has(f)),
        title: t("layerToggle")(feedName(f)),
        text: `${MARKERS[VIEW[f].marker] || "●"} ${feedName(f)}`,
      });
      toggle.addEventListener("click", () => {
        if (!state.hiddenLayers.delete(f)) state.hiddenLayers.add(f);
        renderMap();
      });
      return toggle;
    }),
    el("span", {}, el("span", { class: "swatch", style: `background:${UNKNOWN_COLOUR}` }), t("legendUnknown")),
    el("span", {}, el("span", { class: "swatch", style: `border:2px solid ${SEVERITY_COLOUR.critical}` }), t("legendAlerts")),
  );
}

// --- the alert feed ------------------------------------------------------------------------------------

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

// Critical first, then the newest episode: newest first alone left two critical alerts at rows 20-21 of
// 22, below the fold under newer warnings (issue 22).
function alertOrder(a, b) {
  const rank = (alert) => SEVERITY_ORDER[alert.severity] ?? 3;
  return rank(a) - rank(b) || Date.parse(b.episodeStart) - Date.parse(a.episodeStart) || (a.id < b.id ? -1 : 1);
}

// The operator's choices in the feed's filters ("" is every value).
function chosenFilters() {
  return { severity: $("#filter-severity").value, feed: $("#filter-feed").value, district: $("#filter-district").value };
}

function matchesFilters(alert, filters) {
  return (
    (!filters.severity || alert.severity === filters.severity) &&
    (!filters.feed || alert.feed === filters.feed) &&
    (!filters.district || alert.district === filters.district)
  );
}

function visibleAlerts() {
  const hideResolved = $("#hide-resolved").checked;
  const filters = chosenFilters();
  const now = Date.now();
  return [...state.alerts.values()]
    .filter((v) => v.alert.status !== "resolved" || !hideResolved || (v.resolvedSeen && now - v.resolvedSeen < RESOLVED_LINGER_MS))
    .map((v) => v.alert)
    .filter((alert) => matchesFilters(alert, filters))
    .sort(alertOrder);
}

// The filters' options in the page's language; the districts are those of the alerts held (every choice
// shows something) plus the one chosen, so a choice never vanishes while the operator looks at it.
function renderFilters() {
  fillSelect($("#filter-severity"), t("allSeverities"), Object.keys(SEVERITY_ORDER).map((s) => [s, t("severity")[s]]));
  fillSelect($("#filter-feed"), t("allFeeds"), FEEDS.map((f) => [f, feedName(f)]));
  const districts = new Map();
  for (const { alert } of state.alerts.values()) districts.set(alert.district, alert.districtName || alert.district);
  const chosen = $("#filter-district").value;
  if (chosen && !districts.has(chosen)) districts.set(chosen, chosen);
  fillSelect($("#filter-district"), t("allAreas"), [...districts].sort((a, b) => a[1].localeCompare(b[1], "vi")));
}

// Options replaced only when they differ, keeping the chosen value (a rebuilt <select> would close under
// the operator's pointer on every live event).
function fillSelect(select, allLabel, options) {
  const wanted = [["", allLabel], ...options];
  const same =
    select.options.length === wanted.length &&
    wanted.every(([value, label], i) => select.options[i].value === value && select.options[i].textContent === label);
  if (same) return;
  const value = select.value;
  select.replaceChildren(...wanted.map(([v, label]) => el("option", { value: v, text: label })));
  select.value = wanted.some(([v]) => v === value) ? value : "";
  select.setAttribute("aria-label", t(select.dataset.i18nLabel));
}

function renderAlerts() {
  renderFilters();
  const list = $("#alerts");
  const items = visibleAlerts();
  const keep = new Set(items.map((a) => a.id));
  for (const [id, row] of state.rows) {
    if (!keep.has(id)) {
      row.remove();
      state.rows.delete(id);
    }
  }
  let previous = null;
  for (const alert of items) {
    let row = state.rows.get(alert.id);
    if (!row) {
      row = buildRow(alert.id);
      state.rows.set(alert.id, row);
      if (state.fresh.delete(alert.id)) row.classList.add("fresh-row");
    }
    fillRow(row, alert);
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (row !== expected) list.insertBefore(row, expected);
    previous = row;
  }
  $("#feed-empty").hidden = items.length > 0;
}

function buildRow(id) {
  const note = el("input", { type: "text", class: "note", maxlength: "2000", "data-testid": "note" });
  const ack = el("button", { type: "button", class: "action", "data-action": "ack" });
  const resolve = el("button", { type: "button", class: "action", "data-action": "resolve" });
  const row = el(
    "li",
    { class: "alert", "data-alert-id": id, "data-testid": "alert" },
    el(
      "div",
      { class: "alert-top" },
      el("span", { class: "alert-title" }),
      el("span", { class: "badges" }, el("span", { class: "sev" }), el("span", { class: "status" })),
    ),
    el("div", { class: "alert-text" }),
    el(
      "div",
      { class: "alert-meta" },
      el("span", { class: "where" }),
      el("span", { class: "when" }),
      el("span", { class: "evidence" }),
      el("span", { class: "who" }),
    ),
    el("div", { class: "alert-actions" }, note, ack, resolve),
    el("div", { class: "outcome", role: "status" }),
  );
  ack.addEventListener("click", () => command(id, "ack", row));
  resolve.addEventListener("click", () => command(id, "resolve", row));
  return row;
}

function fillRow(row, alert) {
  const q = (selector) => row.querySelector(selector);
  row.dataset.status = alert.status;
  row.dataset.severity = alert.severity;
  row.dataset.feed = alert.feed;
  q(".alert-title").textContent = bilingual(alert.title);
  q(".alert-text").textContent = bilingual(alert.text);
  q(".sev").textContent = t("severity")[alert.severity] || alert.severity;
  q(".status").textContent = t("status")[alert.status] || alert.status;
  q(".where").textContent = `${alert.entityName} · ${alert.districtName}`;
  const since = (Date.now() - Date.parse(alert.episodeStart)) / 1000;
  q(".when").textContent = `${t("started")} ${localTime(alert.episodeStart)} (${age(since)})`;
  const ev = alert.evidence || {};
  const reference =
    ev.threshold != null ? `${t("threshold")} ${number(ev.threshold, 2)}` : ev.baseline != null ? `${t("baseline")} ${number(ev.baseline, 2)}` : "";
  const unit = ev.unit && ev.unit !== "1" ? ` ${ev.unit}` : ""; // "1": a ratio, no unit to show
  q(".evidence").textContent =
    ev.value != null ? `${t("value")} ${number(ev.value, 2)}${unit}${reference ? ` (${reference})` : ""}` : "";
  const who =
    alert.status === "resolved" && alert.resolvedBy
      ? `${t("status").resolved} ${t("by")} ${alert.resolvedBy} ${localTime(alert.resolvedAt, false)}`
      : alert.status === "acknowledged" && alert.acknowledgedBy
        ? `${t("status").acknowledged} ${t("by")} ${alert.acknowledgedBy} ${localTime(alert.acknowledgedAt, false)}`
        : alert.suppressedBy
          ? t("suppressed")
          : "";
  q(".who").textContent = who;
  q(".who").classList.toggle("suppressed", !!alert.suppressedBy && alert.status === "open");
  const actions = q(".alert-actions");
  actions.hidden = alert.status === "resolved";
  const ack = q('[data-action="ack"]');
  ack.hidden = alert.status !== "open";
  ack.textContent = t("ack");
  q('[data-action="resolve"]').textContent = t("resolve");
  q(".note").placeholder = t("notePlaceholder");
  const outcome = state.outcomes.get(alert.id);
  const outcomeNode = q(".outcome");
  outcomeNode.hidden = !outcome;
  if (outcome) {
    outcomeNode.dataset.kind = outcome.kind;
    outcomeNode.textContent = outcome.text ?? outcome.render();
  }
}

async function command(id, action, row) {
  const buttons = row.querySelectorAll(".action");
  const note = row.querySelector(".note").value.trim();
  buttons.forEach((b) => (b.disabled = true));
  const show = (outcome) => {
    state.outcomes.set(id, outcome);
    const shown = state.alerts.get(id);
    if (shown) fillRow(row, shown.alert);
  };
  show({ kind: "sending", render: () => t("sending") });
  try {
    const result = await api(`/v1/alerts/${encodeURIComponent(id)}/${action}`, {
      method: "POST",
      body: { note: note || null },
    });
    if (isAuthError(result)) return authFailed(detailOf(result));
    if (result.status === 200) {
      row.querySelector(".note").value = "";
      const shown = state.alerts.get(id);
      // The stream brings the same change with its revision; take the answer now if it is further along.
      if (result.data?.id === id && (!shown || STATUS_RANK[result.data.status] > STATUS_RANK[shown.alert.status])) {
        upsertAlert(result.data, shown?.revision ?? 0);
      }
      show({ kind: "done", render: () => t("done")[action] });
    } else if (result.status === 202) {
      show({ kind: "pending", render: () => t("pending") });
    } else {
      show({ kind: "error", text: detailOf(result) }); // 409: the lifecycle forbids it; 404; 503
    }
  } catch (failure) {
    show({ kind: "error", text: t("sendFailed")(failure.message) });
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

// --- language, clock -----------------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
  }
  setConnection(state.connection);
  renderFilters();
  renderIncidents();
  renderTiles();
  renderMap();
  renderUnregistered();
  for (const [id, row] of state.rows) {
    const shown = state.alerts.get(id);
    if (shown) fillRow(row, shown.alert);
  }
}

function tick() {
  $("#clock").textContent = new Intl.DateTimeFormat(locale(), {
    timeZone: TZ,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  }).format(new Date());
  if (!state.key) return;
  for (const feed of FEEDS) {
    const tile = document.querySelector(`.tile[data-feed="${feed}"]`);
    if (tile) renderFreshness(tile, feed, state.picture?.feeds?.[feed]?.sensors || []);
  }
}

async function boot() {
  try {
    await loadFeeds();
  } catch (failure) {
    banner(failure.message); // no tiles nor layers; the alerts still come
  }
  $("#key-form").addEventListener("submit", submitKey);
  $("#change-key").addEventListener("click", () => {
    stop();
    localStorage.removeItem(KEY_STORE);
    showKeyForm(null);
  });
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      state.lang = button.dataset.lang;
      localStorage.setItem(LANG_STORE, state.lang);
      applyLanguage();
    });
  }
  $("#hide-resolved").addEventListener("change", renderAlerts);
  for (const id of ["#filter-severity", "#filter-feed", "#filter-district"]) $(id).addEventListener("change", renderAlerts);
  applyLanguage();
  tick();
  setInterval(tick, 1000);
  setInterval(() => state.key && renderAlerts(), 15_000); // relative times; resolved rows leave
  const key = localStorage.getItem(KEY_STORE);
  if (key) start(key);
  else showKeyForm(null);
}

boot();
