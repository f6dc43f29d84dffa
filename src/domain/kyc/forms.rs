//! The forms talerbox knows by name, with the labels of their fields: what a customer filled in
//! is shown to officers under the same words.

/// One field of a form: the attribute it fills and its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormField {
    pub attribute: &'static str,
    pub label: &'static str,
}

/// A form a FORM check can name (`[kyc-check-NAME] FORM_NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormDescription {
    pub id: &'static str,
    pub title: &'static str,
    /// In the form's order.
    pub fields: &'static [FormField],
}

const fn field(attribute: &'static str, label: &'static str) -> FormField {
    FormField { attribute, label }
}

/// The built-in form of the `personal` check.
pub const FULL_NAME_AND_BIRTHDATE: FormDescription = FormDescription {
    id: "full_name_and_birthdate",
    title: "Full name and date of birth",
    fields: &[
        field("FULL_NAME", "Full name"),
        field("DATE_OF_BIRTH", "Date of birth"),
    ],
};

pub const BUILTIN_FORMS: &[FormDescription] = &[FULL_NAME_AND_BIRTHDATE];

/// Attributes that every form or provider may set: the form's own id and version, and what
/// the challenger's address validation yields.
const COMMON_FIELDS: &[FormField] = &[
    field("FORM_ID", "Form"),
    field("FORM_VERSION", "Form version"),
    field("CONTACT_EMAIL", "E-mail address"),
    field("CONTACT_PHONE", "Phone number"),
    field("CONTACT_NAME", "Contact name"),
    field("ADDRESS_LINES", "Postal address"),
    field("ADDRESS_COUNTRY", "Country"),
];

/// The form with this id, if talerbox knows it.
pub fn form(id: &str) -> Option<&'static FormDescription> {
    BUILTIN_FORMS.iter().find(|form| form.id == id)
}

/// The label of `attribute` as filled in through the form `form_id`, or as a common attribute.
pub fn field_label(form_id: Option<&str>, attribute: &str) -> Option<&'static str> {
    let own = form_id.and_then(form).map_or(&[][..], |form| form.fields);
    own.iter()
        .chain(COMMON_FIELDS)
        .find(|field| field.attribute == attribute)
        .map(|field| field.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_the_builtin_form_and_common_attributes() {
        let form_id = Some("full_name_and_birthdate");
        assert_eq!(field_label(form_id, "FULL_NAME"), Some("Full name"));
        assert_eq!(field_label(form_id, "DATE_OF_BIRTH"), Some("Date of birth"));
        assert_eq!(field_label(form_id, "FORM_ID"), Some("Form"));
        assert_eq!(field_label(None, "CONTACT_EMAIL"), Some("E-mail address"));
        // A form's fields are labelled only through that form.
        assert_eq!(field_label(Some("other"), "FULL_NAME"), None);
        assert_eq!(field_label(form_id, "EXTRA"), None);
        assert_eq!(
            form("full_name_and_birthdate").map(|f| f.title),
            Some("Full name and date of birth")
        );
    }
}
