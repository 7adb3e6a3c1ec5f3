// Retention: cohorts by first (or every) period of a start event, with an optional breakdown.
import { $, h, fmtInt, fmtPct } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, dimOptions, eventOptions } from '../lib/panel.js';

const settings = () => state.retention || { start: '', ret: '', period: 'week', periods: 6, type: 'first_time', breakdown: '' };

export async function show() {
  await fill($('#retention-result'), async () => {
    const cat = await loadCatalog();
    const s = settings();
    $('#start-event').replaceChildren(...eventOptions(cat.events, s.start, 'First visit'));
    $('#return-event').replaceChildren(...eventOptions(cat.events, s.ret, 'Any event'));
    $('#period').value = s.period;
    $('#periods').value = s.periods;
    $('#retention-type').value = s.type;
    const bd = $('#retention-breakdown');
    bd.replaceChildren(...dimOptions('None', { breakdown: true }).filter((o) => o.value !== 'entry_page'));
    bd.value = s.breakdown || '';
    return load(s);
  }, heatTable);
}

function load(s) {
  return report('retention', {
    ...common(), period: s.period, periods: s.periods, retention_type: s.type, breakdown: s.breakdown || undefined,
    start_event: s.start ? { event: s.start } : undefined, return_event: s.ret ? { event: s.ret } : undefined,
  });
}

function heatTable(r) {
  if (!r.cohorts.length) return empty('No cohorts in this range.');
  const unit = { day: 'Day', week: 'Week', month: 'Month' }[r.period];
  const by = Boolean(r.breakdown);
  const head = h('tr', {}, h('th', {}, 'Cohort'), by ? h('th', {}, 'Value') : null, h('th', { class: 'n' }, 'People'),
    Array.from({ length: r.periods }, (_, k) => h('th', { class: 'n' }, `${unit} ${k}`)));
  const rows = r.cohorts.map((c) => h('tr', { dataset: { cohort: c.cohort, value: c.breakdown_value ?? '' } }, h('td', {}, c.cohort), by ? h('td', {}, c.breakdown_value ?? '(none)') : null, h('td', { class: 'n' }, fmtInt(c.size)),
    Array.from({ length: r.periods }, (_, k) => {
      const cell = c.values.find((v) => v.period === k);
      if (!cell) return h('td', { class: 'cell' });
      const td = h('td', {
        class: `cell${cell.complete ? '' : ' partial'}`, dataset: { people: cell.people, percent: cell.percent },
        title: `${fmtInt(cell.people)} of ${fmtInt(c.size)} people${cell.complete ? '' : ' (period still running)'}`,
      }, fmtPct(cell.percent));
      td.style.background = `rgba(79, 70, 229, ${(0.06 + (cell.percent / 100) * 0.85).toFixed(3)})`;
      if (cell.percent > 45) td.style.color = '#fff';
      return td;
    })));
  return h('div', {}, h('table', { class: 'heat' }, h('caption', { class: 'sr' }, 'Share of each cohort that came back, per period'), h('thead', {}, head), h('tbody', {}, rows)),
    h('p', { class: 'muted' }, `Cohorts by ${r.retention_type === 'recurring' ? 'every' : 'first'} ${unit.toLowerCase()} of the start event; figures in italics are for a period still running.`));
}

export function init() {
  $('#retention-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.retention = {
      start: $('#start-event').value, ret: $('#return-event').value, period: $('#period').value,
      periods: Math.min(60, Math.max(2, Number($('#periods').value) || 6)), type: $('#retention-type').value, breakdown: $('#retention-breakdown').value,
    };
    writeUrl();
    fill($('#retention-result'), () => load(state.retention), heatTable);
  });
}
