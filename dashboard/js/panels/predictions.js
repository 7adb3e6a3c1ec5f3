// Predictions: the site's last model fit (not the date range: predictions are as of the site's
// last event). Who is at risk of churning, the distribution of predicted value, the propensity
// model's holdout AUC, and the products bought together.
import { $, h, fmtInt, fmtMoney, fmtDec, num, table } from '../lib/dom.js';
import { report, viewOnly } from '../lib/api.js';
import { state } from '../lib/state.js';
import { fill, empty } from '../lib/panel.js';
import { kpiCard } from '../lib/kpis.js';
import { barChart } from '../lib/charts.js';

const LIMIT = 10;
const pct = (v) => `${(100 * (v ?? 0)).toFixed(1)}%`;
const fmt3 = (v) => (v ?? 0).toFixed(3);
let lastBands = null;

export async function show() {
  const predictions = report('predictions', { site: state.site, limit: LIMIT });
  await Promise.all([
    fill($('#predict-summary'), () => predictions, summary),
    fill($('#predict-value'), () => predictions, (r) => { lastBands = r.model.predicted_value_bands; return valueChart(lastBands); }),
    fill($('#predict-risk'), () => predictions, risk),
    fill($('#predict-pairs'), () => report('affinities', { site: state.site, limit: LIMIT }), pairs),
  ]);
}

function summary(r) {
  const m = r.model;
  const c = m.customers;
  const p = m.propensity;
  return [
    h('div', { class: 'kpis' },
      kpiCard('buyers', 'Buyers', r.counts.buyers, fmtInt),
      kpiCard('at_risk', `At risk (P(alive) < 0.5)`, r.counts.at_risk, fmtInt),
      kpiCard('expected_purchases', `Expected orders, next ${m.config.value_horizon_days} days`, r.counts.expected_purchases, fmtInt),
      kpiCard('predicted_value', `Predicted revenue, next ${m.config.value_horizon_days} days`, r.counts.predicted_value, fmtMoney),
      kpiCard('expected_buyers', `Expected buyers, next ${m.config.purchase_window_days} days`, r.counts.expected_buyers_in_window, fmtDec),
      kpiCard('auc', 'Propensity AUC (holdout)', p?.auc ?? null, fmt3)),
    h('p', { class: 'muted' }, `Fitted ${m.fitted_at}, as of ${m.as_of} (the site's last event). `,
      c.bgnbd ? `BG/NBD r ${fmt3(c.bgnbd.r)}, α ${fmt3(c.bgnbd.alpha)}, a ${fmt3(c.bgnbd.a)}, b ${fmt3(c.bgnbd.b)}. ` : 'BG/NBD not fitted (fewer than 10 buyers or no repeat buyer). ',
      c.gamma_gamma ? `Gamma-Gamma p ${fmt3(c.gamma_gamma.p)}, q ${fmt3(c.gamma_gamma.q)}, γ ${fmt3(c.gamma_gamma.v)}. ` : 'Gamma-Gamma not fitted. ',
      p ? `Propensity trained on ${fmtInt(p.train_people)} people (${pct(p.train_rate)} bought), judged on ${fmtInt(p.holdout_people)} (${pct(p.holdout_rate)} bought).` : (m.propensity_note || '')),
  ];
}

function valueChart(bands) {
  if (!bands?.length || bands.every((b) => !b.people)) return empty('No predicted values yet: the models need 10 repeat buyers.');
  return [h('h2', {}, 'Predicted value per person'),
    h('div', { class: 'chart' }, barChart($('#predict-value'), { values: bands.map((b) => b.people), labels: bands.map((b) => `${fmtMoney(b.from)}–${fmtMoney(b.to)}`), fmt: fmtInt, label: 'People by predicted value over the horizon' }))];
}

function risk(r) {
  if (viewOnly()) return empty('A share link shows no one: sign in with the read key to see who is at risk.');
  if (!r.at_risk.length) return empty('No repeat buyer is below P(alive) 0.5.');
  return [h('h2', {}, 'At risk of churn (highest spenders first)'), table(['Person', '#Orders', '#Spent', '#P(alive)', '#Predicted value'],
    r.at_risk.map((p) => h('tr', { dataset: { person: p.person_id } }, h('td', {}, p.person_id), num(p.orders), num(p.revenue, fmtMoney), num(p.p_alive, fmt3), num(p.predicted_value, fmtMoney))), 'People at risk of churn')];
}

function pairs(r) {
  if (!r.bought_together.length) return empty('No two products were bought together in 2 orders or more.');
  return [h('h2', {}, 'Bought together'), table(['Product', 'With', '#Orders', '#Confidence', '#Lift'],
    r.bought_together.map((p) => h('tr', { dataset: { pair: `${p.product}|${p.other}` } }, h('td', {}, p.product), h('td', {}, p.other), num(p.together), num(p.confidence, pct), num(p.lift, fmtDec))), 'Products bought together')];
}

export function resize() {
  if (lastBands && $('#predict-value').dataset.state === 'ready') $('#predict-value').replaceChildren(...valueChart(lastBands));
}
