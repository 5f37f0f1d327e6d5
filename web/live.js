// Live events of one job over Server-Sent Events, from a known event id on.
//
// new JobStream(jobId, lastEventId, {metrics(points), rewind(step), state(ev),
// checkpoint(ev)}). The browser reconnects by itself with Last-Event-ID (no gap,
// no duplicate); when the stream ends (the job is terminal) it is closed
// rather than reopened. Any other failure reopens it by hand after a pause from
// the last event received.

import {authUrl} from './api.js';
import {TERMINAL} from './util.js';

export class JobStream {
  constructor(jobId, lastEventId, handlers) {
    this.jobId = jobId;
    this.lastEventId = lastEventId || 0;
    this.handlers = handlers;
    this.es = null;
    this.closed = false;
    this.retry = 0;
    this.events = 0;
    this.open();
  }

  open() {
    if (this.closed) return;
    const url = authUrl(`/v1/jobs/${this.jobId}/events`,
      this.lastEventId > 0 ? {last_event_id: this.lastEventId} : {});
    const es = new EventSource(url);
    this.es = es;
    const on = (type, fn) => es.addEventListener(type, (e) => {
      if (this.closed) return;
      const id = Number(e.lastEventId);
      if (Number.isFinite(id) && id > 0) {
        if (id <= this.lastEventId) return; // already seen (cannot happen with a correct server)
        this.lastEventId = id;
      }
      this.events++;
      this.retry = 0;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      fn(data);
    });
    on('metrics', (d) => this.handlers.metrics && this.handlers.metrics(d.points || []));
    on('rewind', (d) => this.handlers.rewind && this.handlers.rewind(d.step));
    on('checkpoint', (d) => this.handlers.checkpoint && this.handlers.checkpoint(d));
    on('state', (d) => {
      if (this.handlers.state) this.handlers.state(d);
      if (TERMINAL.has(d.state)) this.close(); // the server ends the stream now
    });
    es.onerror = () => {
      if (this.closed || es.readyState !== EventSource.CLOSED) return; // CONNECTING: browser retries
      this.retry++;
      const wait = Math.min(30000, 1000 * 2 ** Math.min(this.retry, 5));
      if (this.handlers.error) this.handlers.error(this.retry, wait);
      setTimeout(() => this.open(), wait);
    };
  }

  close() {
    this.closed = true;
    if (this.es) this.es.close();
  }
}
