/*
 * presenced for Digium/Sangoma phones: the user's presence and a few
 * hints on the phone's screen, and softkeys to set the presence.
 *
 * It talks to presenced through DPMA (the phone's pbx.request reaches
 * presenced as an AMI DPMAMessage; presenced answers, and pushes changes
 * with DPMAMessageSend as "presenced.update" events). Its settings come
 * from res_digium_phone.conf (app.getConfig().settings):
 *   user      the phone's user (CustomPresence:<user>)
 *   phonename the phone's name in res_digium_phone.conf (for pushes)
 *   hints     hints to show, comma-separated (1002@internal,1003)
 */
var app = require('app');
app.init();
var screen = require('screen');
var util = require('util');

var presenced = {
    // The states a softkey cycles through, in order.
    states: ['available', 'away', 'dnd', 'xa'],
    words: { not_set: 'Not set', available: 'Available', away: 'Away', xa: 'Extended away', dnd: 'Do not disturb',
        chat: 'Chat', unavailable: 'Unavailable' },
    hintWords: { Idle: 'Idle', InUse: 'On the phone', Busy: 'Busy', Unavailable: 'Not there', Ringing: 'Ringing',
        'InUse&Ringing': 'On the phone, ringing', Hold: 'On hold', 'InUse&Hold': 'On the phone, on hold' },
    user: '',
    phone: '',
    hintRefs: [],
    presence: null,
    hints: {},
    error: '',

    start: function () {
        var settings = (app.getConfig() || {}).settings || {};
        this.user = String(settings.user || '');
        this.phone = String(settings.phonename || settings.user || '');
        this.hintRefs = String(settings.hints || '').split(',').map(function (s) { return s.trim(); })
            .filter(function (s) { return s !== ''; }).slice(0, 10);
        var self = this;
        digium.event.observe({
            eventName: 'presenced.update',
            callback: function (params) { self.update(params.eventData); }
        });
        this.request('presenced.subscribe', { phonename: this.phone, user: this.user, hints: this.hintRefs }, function () {});
        this.refresh();
        window.clearSoftkeys();
        window.setSoftkey(1, 'Next', function () { self.next(); });
        window.setSoftkey(2, 'DND', function () { self.set('dnd'); });
        window.setSoftkey(3, 'Back', function () { self.set('available'); });
        this.render();
    },

    // request calls a presenced method; done gets the result, or nothing
    // when it failed (the error is shown).
    request: function (method, parameters, done) {
        var self = this;
        pbx.request({
            method: method,
            parameters: parameters,
            onSuccess: function (p) {
                var r = p && p.result;
                if (typeof r === 'string') {
                    try { r = JSON.parse(r); } catch (e) { r = null; }
                }
                if (!r || r.error) {
                    self.error = r && r.error ? r.error.message : 'presenced sent nothing';
                    self.render();
                    return;
                }
                self.error = '';
                done(r);
            },
            onFailure: function () {
                self.error = 'presenced cannot be reached';
                self.render();
            }
        });
    },

    refresh: function () {
        var self = this;
        this.request('presenced.presence.get', { user: this.user }, function (r) {
            self.presence = r.presence;
            self.render();
        });
        if (this.hintRefs.length > 0) {
            this.request('presenced.hints', { hints: this.hintRefs }, function (r) {
                (r.hints || []).forEach(function (h) { self.hints[h.exten + '@' + h.context] = h; });
                self.render();
            });
        }
    },

    set: function (state) {
        var self = this;
        this.request('presenced.presence.set', { user: this.user, state: state }, function (r) {
            self.presence = r.presence;
            self.render();
        });
    },

    // next sets the state after the current one.
    next: function () {
        var cur = this.presence ? this.presence.state : '';
        var i = this.states.indexOf(cur);
        this.set(this.states[(i + 1) % this.states.length]);
    },

    // update takes a change presenced pushed.
    update: function (data) {
        var m = data;
        if (typeof m === 'string') {
            try { m = JSON.parse(m); } catch (e) { return; }
        }
        if (!m) {
            return;
        }
        if (m.type === 'presence' && m.user === this.user) {
            this.presence = m.presence;
        } else if (m.type === 'hint' && m.hint) {
            this.hints[m.hint.exten + '@' + m.hint.context] = m.hint;
        } else {
            return;
        }
        this.render();
    },

    // lines are what the screen shows, top to bottom.
    lines: function () {
        var p = this.presence || { state: 'not_set' };
        var out = [this.user + ': ' + (this.words[p.state] || p.state) + (p.message ? ' (' + p.message + ')' : '')];
        var self = this;
        Object.keys(this.hints).sort().forEach(function (k) {
            var h = self.hints[k];
            var st = self.hintWords[h.state] || h.state;
            var pw = h.presence && h.presence.state && h.presence.state !== 'not_set' ? ', ' + (self.words[h.presence.state] || h.presence.state) : '';
            out.push(h.exten + ': ' + st + pw);
        });
        if (this.error) {
            out.push('! ' + this.error);
        }
        return out;
    },

    render: function () {
        screen.clear();
        var y = 0;
        this.lines().forEach(function (line) {
            window.add(new Text(0, y, window.w, Text.LINE_HEIGHT, line));
            y += Text.LINE_HEIGHT;
        });
        util.debug('presenced: ' + this.lines().join(' | '));
    }
};

presenced.start();
