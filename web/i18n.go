package web

import (
	"fmt"
	"strconv"
	"strings"
)

// languages are the languages the pages are shipped in; the first is the fallback.
var languages = []string{"en", "fr", "de", "es"}

// messages are the pages' texts by language. Placeholders are fmt verbs.
var messages = map[string]map[string]string{
	"en": {
		"form_stale":   "This form is out of date or was not sent from your page. Nothing was changed; reload the page and try again.",
		"not_an_email": "That is not an email address.", "too_many": "Too many requests. Please try again later.",
		"no_page":     "There is no page here.",
		"unsub_title": "Unsubscribe", "unsub_confirm": "Stop sending %s to %s?", "unsub_button": "Unsubscribe",
		"unsub_nothing_yet": "Nothing changes until you press the button.", "unsub_instead": "Choose what you receive instead",
		"unsub_done_title": "You are unsubscribed", "unsub_done": "You will no longer receive %s at %s.", "unsub_recorded": "Recorded on %s.",
		"unsub_all_choices": "See and change all your choices",
		"unsub_bad_link":    "This link is not valid. It may be incomplete, altered or expired; nothing was changed.",
		"server_error":      "Something went wrong on our side. Please try again later.",
		"why_suppressed":    "Off: we cannot send to this address (%s).",
		"request_label":     "Your email address", "request_button": "Send me a link",
		"request_sent":      "If we have this address, we have sent it a link to your preferences. It works for a limited time.",
		"mail_link_subject": "Your preferences", "mail_link_body": "Here is the link to see and change what we send you:\n\n%s\n\nIt works until %s. If you did not ask for it, you can ignore this message.",
		"mail_changed_subject": "Your preferences were changed", "mail_changed_body": "Your preferences were changed on %s.\n\nTo see them or change them again: %s\n",
		"title": "Your email and message preferences", "intro": "Choose what we send you. Changes are saved at once.",
		"always": "Always sent", "save": "Save my choices", "saved": "Saved on %s.",
		"all_off": "Unsubscribe from everything", "channel_off": "Turn off everything by %s",
		"pause": "Pause everything for", "weeks": "%d weeks", "paused": "Everything is paused until %s.", "resume": "Resume now",
		"history": "Recent changes", "no_history": "No changes yet.",
		"why_out": "Off: you turned off %s on %s.", "why_in": "On: you chose this on %s.", "why_consent": "Off until you choose it.",
		"gpc":       "Your browser sent a Global Privacy Control signal, so advertising based on your data is off.",
		"scope_all": "everything", "scope_channel": "everything by %s", "scope_topic": "%s on every channel",
		"state_opted_in": "turned on", "state_opted_out": "turned off", "state_pause": "paused",
		"privacy": "Privacy policy", "bad_link": "This link is not valid: it may be incomplete, altered or expired. Ask for a new one from the last message we sent you.",
		"frequency": "Frequency: %s",
	},
	"fr": {
		"form_stale":   "Ce formulaire n’est plus à jour ou ne vient pas de votre page. Rien n’a été changé ; rechargez la page et réessayez.",
		"not_an_email": "Ce n’est pas une adresse e-mail.", "too_many": "Trop de demandes. Veuillez réessayer plus tard.",
		"no_page":     "Il n’y a pas de page ici.",
		"unsub_title": "Se désabonner", "unsub_confirm": "Ne plus envoyer %s à %s ?", "unsub_button": "Me désabonner",
		"unsub_nothing_yet": "Rien ne change tant que vous n’appuyez pas sur le bouton.", "unsub_instead": "Choisir plutôt ce que vous recevez",
		"unsub_done_title": "Désabonnement effectué", "unsub_done": "Vous ne recevrez plus %s à %s.", "unsub_recorded": "Enregistré le %s.",
		"unsub_all_choices": "Voir et changer tous vos choix",
		"unsub_bad_link":    "Ce lien n’est pas valide. Il est peut-être incomplet, modifié ou expiré ; rien n’a été changé.",
		"server_error":      "Une erreur s’est produite de notre côté. Veuillez réessayer plus tard.",
		"why_suppressed":    "Désactivé : nous ne pouvons pas écrire à cette adresse (%s).",
		"request_label":     "Votre adresse e-mail", "request_button": "M’envoyer un lien",
		"request_sent":      "Si nous connaissons cette adresse, nous lui avons envoyé un lien vers vos préférences. Il fonctionne pendant une durée limitée.",
		"mail_link_subject": "Vos préférences", "mail_link_body": "Voici le lien pour voir et changer ce que nous vous envoyons :\n\n%s\n\nIl fonctionne jusqu’au %s. Si vous ne l’avez pas demandé, ignorez ce message.",
		"mail_changed_subject": "Vos préférences ont changé", "mail_changed_body": "Vos préférences ont été modifiées le %s.\n\nPour les voir ou les changer : %s\n",
		"title": "Vos préférences de courriels et de messages", "intro": "Choisissez ce que nous vous envoyons. Les changements sont enregistrés aussitôt.",
		"always": "Toujours envoyé", "save": "Enregistrer mes choix", "saved": "Enregistré le %s.",
		"all_off": "Me désabonner de tout", "channel_off": "Tout désactiver par %s",
		"pause": "Tout suspendre pendant", "weeks": "%d semaines", "paused": "Tout est suspendu jusqu’au %s.", "resume": "Reprendre maintenant",
		"history": "Derniers changements", "no_history": "Aucun changement pour l’instant.",
		"why_out": "Désactivé : vous avez désactivé %s le %s.", "why_in": "Activé : vous l’avez choisi le %s.", "why_consent": "Désactivé tant que vous ne l’avez pas choisi.",
		"gpc":       "Votre navigateur a envoyé un signal Global Privacy Control : la publicité fondée sur vos données est désactivée.",
		"scope_all": "tout", "scope_channel": "tout par %s", "scope_topic": "%s sur tous les canaux",
		"state_opted_in": "activé", "state_opted_out": "désactivé", "state_pause": "suspendu",
		"privacy": "Politique de confidentialité", "bad_link": "Ce lien n’est pas valide : il est peut-être incomplet, modifié ou expiré. Demandez-en un nouveau depuis notre dernier message.",
		"frequency": "Fréquence : %s",
	},
	"de": {
		"form_stale":   "Dieses Formular ist veraltet oder kam nicht von Ihrer Seite. Es wurde nichts geändert; laden Sie die Seite neu und versuchen Sie es erneut.",
		"not_an_email": "Das ist keine E-Mail-Adresse.", "too_many": "Zu viele Anfragen. Bitte versuchen Sie es später erneut.",
		"no_page":     "Hier gibt es keine Seite.",
		"unsub_title": "Abmelden", "unsub_confirm": "Nicht mehr %s an %s senden?", "unsub_button": "Abmelden",
		"unsub_nothing_yet": "Es ändert sich nichts, bis Sie auf die Schaltfläche klicken.", "unsub_instead": "Stattdessen auswählen, was Sie erhalten",
		"unsub_done_title": "Sie sind abgemeldet", "unsub_done": "Sie erhalten %s nicht mehr an %s.", "unsub_recorded": "Gespeichert am %s.",
		"unsub_all_choices": "Alle Einstellungen ansehen und ändern",
		"unsub_bad_link":    "Dieser Link ist ungültig. Er ist vielleicht unvollständig, verändert oder abgelaufen; nichts wurde geändert.",
		"server_error":      "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es später erneut.",
		"why_suppressed":    "Aus: An diese Adresse können wir nicht senden (%s).",
		"request_label":     "Ihre E-Mail-Adresse", "request_button": "Link senden",
		"request_sent":      "Wenn wir diese Adresse kennen, haben wir ihr einen Link zu Ihren Einstellungen gesendet. Er gilt für begrenzte Zeit.",
		"mail_link_subject": "Ihre Einstellungen", "mail_link_body": "Hier ist der Link, um zu sehen und zu ändern, was wir Ihnen senden:\n\n%s\n\nEr gilt bis %s. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.",
		"mail_changed_subject": "Ihre Einstellungen wurden geändert", "mail_changed_body": "Ihre Einstellungen wurden am %s geändert.\n\nZum Ansehen oder Ändern: %s\n",
		"title": "Ihre E-Mail- und Nachrichteneinstellungen", "intro": "Wählen Sie, was wir Ihnen senden. Änderungen werden sofort gespeichert.",
		"always": "Wird immer gesendet", "save": "Auswahl speichern", "saved": "Gespeichert am %s.",
		"all_off": "Von allem abmelden", "channel_off": "Alles per %s ausschalten",
		"pause": "Alles pausieren für", "weeks": "%d Wochen", "paused": "Alles ist pausiert bis %s.", "resume": "Jetzt fortsetzen",
		"history": "Letzte Änderungen", "no_history": "Noch keine Änderungen.",
		"why_out": "Aus: Sie haben %s am %s ausgeschaltet.", "why_in": "An: Sie haben es am %s gewählt.", "why_consent": "Aus, bis Sie es wählen.",
		"gpc":       "Ihr Browser hat ein Global-Privacy-Control-Signal gesendet: Werbung auf Grundlage Ihrer Daten ist ausgeschaltet.",
		"scope_all": "alles", "scope_channel": "alles per %s", "scope_topic": "%s auf allen Kanälen",
		"state_opted_in": "eingeschaltet", "state_opted_out": "ausgeschaltet", "state_pause": "pausiert",
		"privacy": "Datenschutzerklärung", "bad_link": "Dieser Link ist ungültig: Er ist vielleicht unvollständig, verändert oder abgelaufen. Fordern Sie über unsere letzte Nachricht einen neuen an.",
		"frequency": "Häufigkeit: %s",
	},
	"es": {
		"form_stale":   "Este formulario está desactualizado o no se envió desde tu página. No se ha cambiado nada; recarga la página y vuelve a intentarlo.",
		"not_an_email": "Eso no es una dirección de correo.", "too_many": "Demasiadas solicitudes. Inténtalo de nuevo más tarde.",
		"no_page":     "Aquí no hay ninguna página.",
		"unsub_title": "Darse de baja", "unsub_confirm": "¿Dejar de enviar %s a %s?", "unsub_button": "Darme de baja",
		"unsub_nothing_yet": "Nada cambia hasta que pulses el botón.", "unsub_instead": "Elegir qué recibes en su lugar",
		"unsub_done_title": "Te has dado de baja", "unsub_done": "Ya no recibirás %s en %s.", "unsub_recorded": "Registrado el %s.",
		"unsub_all_choices": "Ver y cambiar todas tus opciones",
		"unsub_bad_link":    "Este enlace no es válido. Puede estar incompleto, alterado o caducado; no se ha cambiado nada.",
		"server_error":      "Algo ha fallado por nuestra parte. Inténtalo de nuevo más tarde.",
		"why_suppressed":    "Desactivado: no podemos enviar a esta dirección (%s).",
		"request_label":     "Tu dirección de correo", "request_button": "Enviarme un enlace",
		"request_sent":      "Si conocemos esta dirección, le hemos enviado un enlace a tus preferencias. Funciona durante un tiempo limitado.",
		"mail_link_subject": "Tus preferencias", "mail_link_body": "Este es el enlace para ver y cambiar lo que te enviamos:\n\n%s\n\nFunciona hasta el %s. Si no lo pediste, ignora este mensaje.",
		"mail_changed_subject": "Tus preferencias han cambiado", "mail_changed_body": "Tus preferencias se cambiaron el %s.\n\nPara verlas o cambiarlas: %s\n",
		"title": "Tus preferencias de correo y mensajes", "intro": "Elige qué te enviamos. Los cambios se guardan al momento.",
		"always": "Se envía siempre", "save": "Guardar mis opciones", "saved": "Guardado el %s.",
		"all_off": "Darme de baja de todo", "channel_off": "Desactivar todo por %s",
		"pause": "Pausar todo durante", "weeks": "%d semanas", "paused": "Todo está en pausa hasta el %s.", "resume": "Reanudar ahora",
		"history": "Cambios recientes", "no_history": "Aún no hay cambios.",
		"why_out": "Desactivado: desactivaste %s el %s.", "why_in": "Activado: lo elegiste el %s.", "why_consent": "Desactivado hasta que lo elijas.",
		"gpc":       "Tu navegador envió una señal Global Privacy Control: la publicidad basada en tus datos está desactivada.",
		"scope_all": "todo", "scope_channel": "todo por %s", "scope_topic": "%s en todos los canales",
		"state_opted_in": "activado", "state_opted_out": "desactivado", "state_pause": "pausado",
		"privacy": "Política de privacidad", "bad_link": "Este enlace no es válido: puede estar incompleto, alterado o caducado. Pide uno nuevo desde nuestro último mensaje.",
		"frequency": "Frecuencia: %s",
	},
}

// language picks a language from a locale such as "fr-CA": the one shipped, or the
// fallback.
func language(locale string) string {
	if l, ok := shipped(locale); ok {
		return l
	}
	return languages[0]
}

// shipped reports the shipped language of a locale, if there is one.
func shipped(locale string) (string, bool) {
	l := strings.ToLower(strings.SplitN(strings.ReplaceAll(locale, "_", "-"), "-", 2)[0])
	_, ok := messages[l]
	return l, ok
}

// browserLanguage picks the page's language from an Accept-Language header such as
// "de-CH,de;q=0.9,en;q=0.8": the shipped language the browser weighs highest, the
// first of equals; the fallback when it names none. An entry whose weight does not read
// as 0 to 1 is left out.
func browserLanguage(header string) string {
	best, bestQ := languages[0], 0.0
	for entry := range strings.SplitSeq(header, ",") {
		tag, params, _ := strings.Cut(entry, ";")
		q := 1.0
		for param := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil || f < 0 || f > 1 {
					f = -1
				}
				q = f
			}
		}
		if l, ok := shipped(strings.TrimSpace(tag)); ok && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

// inSentence writes a channel's name as it reads inside a sentence of lang: an ordinary
// word in lower case ("email", "text messages"), but not a name that keeps capitals
// ("SMS", "WhatsApp"), nor any noun in German.
func inSentence(lang, name string) string {
	if lang == "de" || len(name) < 2 || strings.ToLower(name[1:]) != name[1:] {
		return name
	}
	return strings.ToLower(name[:1]) + name[1:]
}

// text is a message in a language, formatted.
func text(lang, key string, args ...any) string {
	m, ok := messages[lang][key]
	if !ok {
		m = messages[languages[0]][key]
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// described picks a description in lang from a dictionary entry's, or the fallback.
func described(descriptions map[string]string, lang, fallback string) string {
	if d := descriptions[lang]; d != "" {
		return d
	}
	if d := descriptions[languages[0]]; d != "" {
		return d
	}
	return fallback
}
