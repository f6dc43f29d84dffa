// The officer's back office (built on the shared modules of web/common).
import { exchangeBase } from "../web/common/api.js";

document.getElementById("main").textContent = `Exchange: ${exchangeBase.href}`;
