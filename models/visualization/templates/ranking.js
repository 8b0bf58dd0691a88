var preview = document.querySelector('.preview video');
var caption = document.querySelector('.preview .now');
var rows = Array.prototype.slice.call(document.querySelectorAll('tr.result'));
if (preview) watchErrors(preview, document.querySelector('.video-error'));
var values = rows.map(function (r) {
  return parseFloat(r.dataset.similarity);
});
var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
function choose(row, start) {
  rows.forEach(function (r) { r.classList.toggle('playing', r === row); });
  document.querySelector('.video-error').hidden = true;
  preview.dataset.name = row.dataset.name;
  preview.setAttribute('src', row.dataset.src);
  var thumb = row.querySelector('img');
  if (thumb) preview.setAttribute('poster', thumb.src);
  caption.textContent = '#' + row.dataset.rank + '  ' + row.dataset.name;
  if (start) {
    var started = preview.play();
    if (started && started.catch) started.catch(function () {});
  }
}
rows.forEach(function (row, i) {
  var bar = document.createElement('span');
  bar.className = 'bar';
  var share = high > low ? (values[i] - low) / (high - low) : 1;
  bar.style.width = Math.round(8 + 72 * share) + 'px';
  row.querySelector('.similarity').prepend(bar);
  row.addEventListener('click', function () { choose(row, true); });
  row.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      choose(row, true);
    }
  });
});
if (rows.length && preview) choose(rows[0], false);
document.body.dataset.ready = 'yes';
