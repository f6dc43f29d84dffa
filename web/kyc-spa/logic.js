// The customer page's decisions, apart from the DOM so that they can be tested alone.

/** The largest file a form accepts (uploads are limited to 16 MiB in all, base32 grows 8/5). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const PHONE = /^\+?[0-9][0-9 ()\-./]{5,}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The `<input type>` of a described field. */
export function inputType(field) {
  return { text: "text", date: "date", email: "email", tel: "tel", file: "file" }[field.type] || "text";
}

/**
 * The problems of the values a person entered, as `{FIELD_NAME: message}` (empty when the form
 * may be sent). `values` maps names to strings, and file fields to `{name, size}` or null;
 * `today` is `YYYY-MM-DD`.
 */
export function validate(form, values, today) {
  const problems = {};
  for (const field of form.fields) {
    const value = values[field.name];
    const empty = value == null || (typeof value === "string" && value.trim() === "");
    if (empty) {
      if (field.required) problems[field.name] = `${field.label} is required.`;
      continue;
    }
    const problem = fieldProblem(field, value, today);
    if (problem) problems[field.name] = problem;
  }
  return problems;
}

function fieldProblem(field, value, today) {
  switch (field.type) {
    case "email":
      return EMAIL.test(value.trim()) ? null : "Enter an e-mail address such as name@example.com.";
    case "tel":
      return PHONE.test(value.trim()) ? null : "Enter a phone number with its country code, e.g. +41 44 123 45 67.";
    case "date": {
      const match = DATE.exec(value);
      const date = match && new Date(Date.UTC(+match[1], +match[2] - 1, +match[3]));
      if (!date || date.getUTCDate() !== +match[3] || date.getUTCMonth() !== +match[2] - 1) {
        return "Enter a date as year-month-day.";
      }
      if (/BIRTH/.test(field.name) && value >= today) return "A date of birth lies in the past.";
      return null;
    }
    case "file":
      if (value.size === 0) return "The file is empty.";
      return value.size > MAX_FILE_BYTES ? `The file is larger than ${MAX_FILE_BYTES / 1048576} MiB.` : null;
    default:
      return null;
  }
}

/** The heading over the list: what the person must do. */
export function summary(information) {
  const count = information.requirements.length;
  if (count === 1) return "One step is required.";
  return information.is_and_combinator
    ? `Complete all ${count} steps.`
    : `Complete one of these ${count} steps.`;
}

/**
 * The state of a requirement in words: `sent` ids were uploaded from this page, `started` ids
 * went to their provider. Answers `{label, tone}`.
 */
export function requirementState(requirement, sent, started) {
  if (requirement.form === "INFO") return { label: "For your information", tone: "open" };
  if (sent.has(requirement.id)) return { label: "Sent, being checked", tone: "ok" };
  if (started.has(requirement.id)) return { label: "Started at the provider", tone: "open" };
  return { label: "To do", tone: "open" };
}

/** The attributes of a FORM's `<form>` data as the server expects them (`FORM_ID` first). */
export function uploadData(form, values) {
  const data = new FormData();
  data.append("FORM_ID", form.id);
  for (const field of form.fields) {
    const value = values[field.name];
    if (value == null || value === "") continue;
    if (field.type === "file") data.append(field.name, value, value.name);
    else data.append(field.name, typeof value === "string" ? value.trim() : String(value));
  }
  return data;
}
