// The technician page: plain DOM, no framework. Every value is put in with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
let events;

function say(text, error = false) {
  $('message').textContent = text;
  $('message').className = error ? 'error' : '';
}

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  if (res.status === 401 && path !== '/api/login') showLogin();
  if (!res.ok) throw new Error(data.error?.message ?? res.statusText);
  return data;
}

function showLogin() {
  events?.close();
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('name').focus();
}

function row(cells, className) {
  const tr = document.createElement('tr');
  for (const [text, cls] of cells) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  if (className) tr.className = className;
  return tr;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

function renderStatus(s) {
  $('gateway-id').textContent = s.gatewayId;
  $('export').hidden = !s.canExport;
  const facts = [
    ['Running since', time(s.startedAt)],
    [
      'Backlog',
      `${s.backlog.records} records${s.backlog.oldestCapturedAt ? `, oldest ${time(s.backlog.oldestCapturedAt)}` : ''}`,
    ],
    [
      'Last window',
      s.lastWindow
        ? `${s.lastWindow.outcome} at ${time(s.lastWindow.closedAt)}, ${s.lastWindow.records} records${s.lastWindow.error ? ` (${s.lastWindow.error.message})` : ''}`
        : 'none yet',
    ],
    ['Uplink', s.uplink.configured ? (s.uplink.windowOpen ? 'window open' : 'configured') : 'not configured'],
  ];
  if (s.provisioning) facts.push(['Provisioning', s.provisioning]);
  if (s.certificateNotAfter) facts.push(['Certificate valid until', time(s.certificateNotAfter)]);
  if (s.clockSynchronized !== undefined)
    facts.push(['Clock', s.clockSynchronized ? 'synchronized' : 'NOT synchronized']);
  const dl = $('gateway');
  dl.replaceChildren();
  for (const [term, value] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dl.append(dt, dd);
  }
  $('devices').replaceChildren(
    ...s.adapters.map((a) =>
      row([
        [a.deviceId],
        [a.state, a.state === 'connected' ? 'connected' : 'problem'],
        [time(a.since)],
        [time(a.lastReadingAt)],
        [String(a.stored)],
        [String(a.malformed)],
        [String(a.refused)],
        [a.lastError ? a.lastError.message : '—', a.lastError ? 'problem' : 'muted'],
      ]),
    ),
  );
}

let refreshSoon;

/** A reading changes the device's counters too: the status is read again, at most once a second. */
function refreshAfterReading() {
  if (refreshSoon) return;
  refreshSoon = setTimeout(() => {
    refreshSoon = undefined;
    void refresh();
  }, 1000);
}

function renderReading(reading) {
  refreshAfterReading();
  const id = `readings-${reading.deviceId}`;
  let box = document.getElementById(id);
  if (!box) {
    box = document.createElement('section');
    box.id = id;
    box.className = 'device-readings';
    box.setAttribute('aria-label', `Readings of ${reading.deviceId}`);
    const h = document.createElement('h3');
    const table = document.createElement('table');
    table.innerHTML =
      '<thead><tr><th scope="col">Measurement</th><th scope="col">Code</th><th scope="col">Value</th><th scope="col">Unit</th><th scope="col">Status</th></tr></thead><tbody></tbody>';
    box.append(h, table);
    $('readings').append(box);
  }
  box.querySelector('h3').textContent = `${reading.deviceId} — ${time(reading.capturedAt)}`;
  box
    .querySelector('tbody')
    .replaceChildren(
      ...reading.observations.map((o) =>
        row([
          [o.name],
          [`${o.code} (${o.system})`],
          [o.value === null ? '—' : String(o.value)],
          [o.unit ?? '—'],
          [o.status],
        ]),
      ),
    );
}

async function refresh() {
  try {
    renderStatus(await call('GET', '/api/status'));
  } catch (err) {
    say(err.message, true);
  }
}

async function showApp(who) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  say(`Logged in as ${who}.`);
  await refresh();
  events = new EventSource('/api/events');
  events.addEventListener('reading', (e) => renderReading(JSON.parse(e.data)));
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const { who } = await call('POST', '/api/login', { name: $('name').value, secret: $('secret').value });
    $('secret').value = '';
    await showApp(who);
  } catch (err) {
    say(err.message, true);
    $('secret').focus();
  }
});

$('logout').addEventListener('click', async () => {
  await call('POST', '/api/logout', {}).catch(() => undefined);
  say('Logged out.');
  showLogin();
});

$('open-window').addEventListener('click', async () => {
  const button = $('open-window');
  button.disabled = true;
  $('window-result').textContent = 'Window open: uploading…';
  try {
    const r = await call('POST', '/api/window', {});
    $('window-result').textContent =
      `Window ${r.outcome}: ${r.records ?? 0} records sent${r.error ? ` (${r.error.message})` : ''}.`;
  } catch (err) {
    $('window-result').textContent = err.message;
  } finally {
    button.disabled = false;
    await refresh();
  }
});

let suggested = null;

function probeButton(port) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = `Probe ${port.links[0] ?? port.path}`;
  button.addEventListener('click', () => probe(port.links[0] ?? port.path));
  return button;
}

$('list-ports').addEventListener('click', async () => {
  try {
    const ports = await call('GET', '/api/ports');
    $('ports').replaceChildren(
      ...ports.map((p) => {
        const tr = row([
          [p.path],
          [p.links.join(', ') || '—'],
          [p.usedBy ?? (p.heldBy.join(', ') || 'free')],
        ]);
        const td = document.createElement('td');
        if (!p.usedBy) td.append(probeButton(p));
        tr.append(td);
        return tr;
      }),
    );
    if (ports.length === 0) say('No serial port found: is the adapter plugged in?');
  } catch (err) {
    say(err.message, true);
  }
});

$('probe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const path = $('probe-path').value.trim();
  if (path) void probe(path);
});

/** A call whose answer streams JSON lines: `{progress}` each, then `{result}`, which it resolves with. */
async function streamCall(path, body, onProgress) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the gateway ended the answer early');
    rest += value;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const message = JSON.parse(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
      if (message.result) return message.result;
      onProgress(message.progress);
    }
  }
}

async function probe(path) {
  const out = $('probe');
  out.textContent = `Listening on ${path}…`;
  $('add-suggested').hidden = true;
  const lines = [];
  try {
    const seconds = Number($('probe-seconds').value) || 14;
    const result = await streamCall('/api/probe', { path, seconds }, (p) => {
      const heard = p.error
        ? `cannot open (${p.error})`
        : `${p.bytes} bytes, ${p.lines} lines, ${p.keyValueLines} KEY=VALUE`;
      lines.push(`${p.setting}: ${heard}`);
      out.textContent = `Listening on ${path}…\n${lines.join('\n')}`;
    });
    showProbe(result, lines);
  } catch (err) {
    out.textContent = err.message;
  }
}

$('run-doctor').addEventListener('click', async () => {
  try {
    const checks = await call('GET', '/api/doctor');
    $('doctor').replaceChildren(
      ...checks.map((c) => {
        const li = document.createElement('li');
        li.className = c.status === 'ok' ? 'connected' : 'problem';
        li.textContent = `${c.status.toUpperCase()} ${c.check}: ${c.detail}${c.action ? ` — ${c.action}` : ''}`;
        return li;
      }),
    );
  } catch (err) {
    say(err.message, true);
  }
});

$('export').addEventListener('click', async () => {
  const button = $('export');
  button.disabled = true;
  $('export-result').textContent = 'Exporting: the gateway keeps reading…';
  try {
    const r = await streamCall('/api/export', {}, (p) => {
      $('export-result').textContent =
        p.totalBytes === undefined
          ? `Exporting: ${p.records} of ${p.total} records…`
          : `Writing to the stick: ${Math.floor((100 * p.bytes) / Math.max(1, p.totalBytes))} % of ${p.records} records…`;
    });
    $('export-result').textContent = r.error
      ? `Not exported: ${r.error}`
      : `Exported ${r.records} records to ${r.file}${r.sha256 ? ` (SHA-256 ${r.sha256})` : ''}. They stay in the cache until uploaded.`;
  } catch (err) {
    $('export-result').textContent = err.message;
  } finally {
    button.disabled = false;
  }
});

function showProbe(r, lines) {
  const out = $('probe');
  if (r.problem) {
    out.textContent = r.problem;
    return;
  }
  if (!r.recognized) {
    out.textContent = `Nothing recognized on ${r.path}.\n${lines.join('\n')}`;
    return;
  }
  suggested = r.suggested;
  out.textContent = `${r.path}: ${r.recognized} at ${r.setting}${r.keys.length ? `; keys heard: ${r.keys.join(' ')}` : ''}.${suggested ? '' : ' Write its format by hand.'}`;
  $('add-suggested').hidden = !suggested;
}

$('add-suggested').addEventListener('click', async () => {
  if (!$('config').value.trim()) await loadConfig();
  try {
    const config = JSON.parse($('config').value);
    config.devices.push(suggested);
    $('config').value = JSON.stringify(config, null, 2);
    $('config').focus();
    say('The suggested device was added to the config below: check its id and fields, then Check and Apply.');
  } catch {
    say('The config below is not valid JSON: fix it first.', true);
  }
});

async function loadConfig() {
  const { config } = await call('GET', '/api/config');
  $('config').value = JSON.stringify(config, null, 2);
}

$('load-config').addEventListener('click', () => loadConfig().catch((err) => say(err.message, true)));

function showIssues(issues, warnings = []) {
  $('config-issues').replaceChildren(
    ...[...issues.map((i) => [i, 'problem']), ...warnings.map((i) => [i, 'muted'])].map(([i, cls]) => {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = i.path;
      li.append(code, `: ${i.message}`);
      li.className = cls;
      return li;
    }),
  );
}

async function configAction(path, verb) {
  let config;
  try {
    config = JSON.parse($('config').value);
  } catch (err) {
    $('config-result').textContent = `Not valid JSON: ${err.message}`;
    showIssues([]);
    return;
  }
  $('config-result').textContent =
    verb === 'apply' ? 'Applying: the gateway restarts its devices and checks their health…' : 'Checking…';
  try {
    const r = await call('POST', path, { config });
    if (verb === 'check')
      $('config-result').textContent = r.valid ? 'Valid.' : `Refused: ${r.issues.length} problem(s).`;
    else
      $('config-result').textContent = r.applied
        ? 'Applied: the gateway runs on the new config.'
        : `Not applied: ${r.reason}`;
    showIssues(r.issues, r.warnings);
  } catch (err) {
    $('config-result').textContent = err.message;
  }
  await refresh();
}

$('check-config').addEventListener('click', () => configAction('/api/config/check', 'check'));
$('apply-config').addEventListener('click', () => configAction('/api/config/apply', 'apply'));

setInterval(() => {
  if (!$('app').hidden) void refresh();
}, 5000);

call('GET', '/api/session').then(
  ({ who }) => showApp(who),
  () => showLogin(),
);
