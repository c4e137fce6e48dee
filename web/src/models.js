// The model picker: the tier's models from the gateway's `usage` answer, and the user's own pick
// remembered per user in this browser, so a reload keeps it while the tier still allows it.

const TIER_DEFAULT = "";

export class ModelPicker {
  constructor(select, userPoolId, sub, storage = window.localStorage) {
    this.select = select;
    this.storage = storage;
    this.key = `ai-gateway.model.${userPoolId}.${sub}`;
    this.fill([], null);
  }

  /** Offer `models`; select the remembered pick if allowed, else `defaultModel`. */
  fill(models, defaultModel) {
    const list = Array.isArray(models) ? models : [];
    const picked = this.remembered();
    const chosen = list.includes(picked) ? picked : defaultModel;
    // Until the gateway has answered, the turn names no model and gets the tier's default.
    const options = list.length
      ? list.map((model) => new Option(model, model, false, model === chosen))
      : [new Option("Tier default", TIER_DEFAULT)];
    this.select.replaceChildren(...options);
  }

  remembered() {
    try {
      return this.storage.getItem(this.key);
    } catch {
      return null; // storage blocked: the tier's default it is
    }
  }

  remember() {
    try {
      if (this.select.value) this.storage.setItem(this.key, this.select.value);
    } catch {
      /* storage blocked or full: the pick lasts until the page closes */
    }
  }
}
