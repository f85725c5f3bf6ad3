// The merge screen: a card that stays keeps its own loyalty card number (the others' numbers
// then find it), so choosing it to stay also chooses its number. The server says the same if
// the two disagree; this only spares the user the round trip.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    const survivor = event.target;
    if (survivor.name !== "survivor" || !survivor.hasAttribute("data-keeps-card")) {
      return;
    }
    const number = document.getElementById("f_card_number_" + survivor.value);
    if (number) {
      number.checked = true;
    }
  });
})();
