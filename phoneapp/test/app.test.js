// The sample phone app, run in Node against a stub of the phone's
// JavaScript API, talking to presenced through the fake AMI's DPMA
// (cmd/presenced's TestPhoneAppInNode starts both and gives the bridge's
// address in PRESENCED_DPMA_BRIDGE; without it the test is skipped).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const bridge = process.env.PRESENCED_DPMA_BRIDGE;

// phone builds the stub of the phone's API the app runs against.
function phone(settings) {
  const observers = {};
  const softkeys = {};
  const shown = [];
  let pushed = 0;
  let stopped = false;
  const ctx = {
    console,
    JSON,
    Text: function (x, y, w, h, label) { this.x = x; this.y = y; this.label = label; },
    window: {
      w: 320,
      add(widget) { shown.push(widget.label); },
      clearSoftkeys() {},
      setSoftkey(n, label, fn) { softkeys[n] = { label, fn }; },
    },
    digium: {
      event: { observe({ eventName, callback }) { (observers[eventName] = observers[eventName] || []).push(callback); } },
    },
    pbx: {
      // pbx.request reaches presenced as a DPMAMessage through the fake AMI.
      request({ method, parameters, onSuccess, onFailure }) {
        fetch(bridge + '/request', { method: 'POST', body: JSON.stringify({ method, parameters }) })
          .then((r) => (r.ok ? r.json() : Promise.reject(new Error('status ' + r.status))))
          .then((p) => onSuccess(p), (e) => onFailure && onFailure(e));
      },
    },
    require(name) {
      switch (name) {
        case 'app': return { init() {}, getConfig() { return { settings }; } };
        case 'screen': return { clear() { shown.length = 0; } };
        case 'util': return { debug() {} };
      }
      throw new Error('no module ' + name);
    },
  };
  ctx.Text.LINE_HEIGHT = 20;
  // DPMAMessageSend to this phone: delivered as the events observed.
  async function poll() {
    while (!stopped) {
      const r = await fetch(bridge + '/pushes?phone=' + encodeURIComponent(settings.phonename) + '&after=' + pushed);
      for (const m of await r.json()) {
        pushed++;
        for (const cb of observers[m.method] || []) cb({ eventData: m.message });
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return {
    ctx, softkeys, shown,
    run() {
      vm.runInNewContext(fs.readFileSync(path.join(__dirname, '..', 'presenced', 'app.js'), 'utf8'), ctx, { filename: 'app.js' });
      poll();
    },
    stop() { stopped = true; },
    // shows waits until a line of the screen is text.
    async shows(text, what) {
      const deadline = Date.now() + 10000;
      while (!shown.includes(text)) {
        if (Date.now() > deadline) assert.fail(what + ': the screen shows ' + JSON.stringify(shown) + ', not ' + JSON.stringify(text));
        await new Promise((res) => setTimeout(res, 20));
      }
    },
  };
}

async function asterisk(provider) {
  const r = await fetch(bridge + '/asterisk?provider=' + encodeURIComponent(provider));
  return r.json();
}

test('the phone app shows and sets presence through presenced', { skip: !bridge && 'no PRESENCED_DPMA_BRIDGE' }, async () => {
  const p = phone({ user: '1001', phonename: 'alice', hints: '1002@internal' });
  p.run();
  try {
    await p.shows('1001: Not set', 'at start');
    await p.shows('1002: Idle', 'the hint');
    assert.deepStrictEqual(Object.keys(p.softkeys).map((k) => p.softkeys[k].label), ['Next', 'DND', 'Back']);

    p.softkeys[2].fn(); // DND
    await p.shows('1001: Do not disturb', 'after DND');
    assert.strictEqual((await asterisk('CustomPresence:1001')).state, 'dnd');

    p.softkeys[3].fn(); // Back
    await p.shows('1001: Available', 'after Back');
    p.softkeys[1].fn(); // Next: away
    await p.shows('1001: Away', 'after Next');
    assert.strictEqual((await asterisk('CustomPresence:1001')).state, 'away');

    // Changes made elsewhere (another phone, the dialplan) are pushed.
    await fetch(bridge + '/asterisk?provider=CustomPresence:1001&state=xa&message=Holidays', { method: 'POST' });
    await p.shows('1001: Extended away (Holidays)', 'a change pushed');
    await fetch(bridge + '/asterisk?provider=CustomPresence:1002&state=dnd', { method: 'POST' });
    await p.shows('1002: Idle, Do not disturb', "the hint's presence pushed");
  } finally {
    p.stop();
  }
});

test('an error from presenced is shown, and changes nothing', { skip: !bridge && 'no PRESENCED_DPMA_BRIDGE' }, async () => {
  const p = phone({ user: '1001&PJSIP/evil', phonename: 'mallory', hints: '' });
  p.run();
  try {
    await p.shows('! user name "1001&PJSIP/evil" may contain only letters, digits and _ . - + @', 'a hostile user');
  } finally {
    p.stop();
  }
});
